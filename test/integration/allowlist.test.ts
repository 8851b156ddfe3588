// Network policy allowlist on the engine under test (gvisor here, qemu in the conformance stage),
// against a fake internet in a network namespace this file makes: an allowed name works over HTTP
// and HTTPS from curl, git and Python, with and without proxy variables; every other way out (other
// names, raw addresses, forged Host or SNI, a relayed CONNECT, another resolver, the host's own
// addresses, ports no rule names, UDP) is refused and in the network log; rules change while the workspace runs. Needs root
// for the fake internet's namespace and veth link.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { appendFile, readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ENGINE } from "../helpers/engine.js";
import { createFakeInternet, type FakeInternet } from "../helpers/fake-internet.js";
import { PYRO_BIN, runCli, workspaceSuite } from "../helpers/workspace-suite.js";

const ROOT = process.getuid?.() === 0;
const PROXY = "http://198.18.0.1:3128";
/** The node every environment carries for pyro's agent, run through its own loader and libraries. */
const NODE = "/opt/pyro/lib/ld-linux-x86-64.so.2 --library-path /opt/pyro/lib /opt/pyro/bin/node";

describe(`network policy allowlist (${ENGINE})`, { skip: ROOT ? false : "the fake internet needs root" }, () => {
  const { ws, create, stateDir, host } = workspaceSuite("allow");
  let net: FakeInternet;
  let id = "";

  before(async () => {
    net = await createFakeInternet(["allowed.test", "other.test", "later.test", "registry.npmjs.org", "bound.test"]);
    await appendFile(net.hostsFile, `127.0.0.1 loopy.test\n${net.hostAddress} self.test\n`);
    // The supervisor the manager starts inherits this: the gateway resolves through the hosts file.
    process.env.PYRO_EGRESS_HOSTS = net.hostsFile;
    const info = await create({
      network_policy: "allowlist",
      allow_hosts: ["allowed.test", "loopy.test", "self.test"],
      deny_hosts: ["other.test:8080"],
      ca_files: [net.caFile],
    });
    id = info.workspace_id;
    assert.deepEqual(info.network_rules, {
      allow: ["allowed.test", "loopy.test", "self.test"],
      deny: ["other.test:8080"],
    });
  });

  after(async () => {
    delete process.env.PYRO_EGRESS_HOSTS;
    await net?.teardown();
  });

  const sh = async (script: string) => {
    const result = await ws.exec({ workspace: id, command: script, timeout_seconds: 120 });
    return { out: result.stdout, err: result.stderr, code: result.exit_code };
  };
  const networkLog = async () => (await ws.logs({ workspace: id, network: true, limit: 1000 })).network ?? [];

  it("reaches an allowed name over HTTP and HTTPS: curl, git, Python and Node, with and without proxy variables", async () => {
    // Certificates are verified: the fake internet's CA is trusted through ca_files, not -k.
    const py = (url: string) =>
      `python3 -c "import urllib.request as u; print(u.urlopen('${url}', timeout=20).read().decode(), end='')"`;
    const { out, err, code } = await sh(
      [
        "set -e",
        "cat /etc/resolv.conf",
        "curl -sS --max-time 20 http://allowed.test/plain",
        "curl -sS --max-time 20 https://allowed.test/tls",
        `https_proxy=${PROXY} curl -sS --max-time 20 https://allowed.test/connect`,
        `http_proxy=${PROXY} curl -sS --max-time 20 http://allowed.test/absolute`,
        "git clone -q http://allowed.test/repo.git /tmp/repo && cat /tmp/repo/README.md",
        "git clone -q https://allowed.test/repo.git /tmp/repo-tls && cat /tmp/repo-tls/README.md",
        // The guest's own bundle, without the CA pyro added, does not trust the server.
        "if curl -s --max-time 20 --cacert /etc/ssl/certs/ca-certificates.pyro-original.crt https://allowed.test/; then echo UNTRUSTED-CA-ACCEPTED; fi",
        py("https://allowed.test/python"),
        // npm's client is Node's TLS stack: the node the environment carries for the agent stands in.
        `${NODE} -e "require('https').get('https://allowed.test/node', (r) => r.pipe(process.stdout)).on('error', (e) => { console.error(e.message); process.exit(1); })"`,
        `HTTPS_PROXY=${PROXY} ${py("https://allowed.test/python-proxy")}`,
      ].join("\n"),
    );
    assert.equal(code, 0, err);
    assert.match(out, /^nameserver 198\.18\.0\.1$/m);
    assert.doesNotMatch(out, /UNTRUSTED-CA-ACCEPTED/);
    for (const line of [
      "hello from allowed.test /plain",
      "hello from allowed.test /tls",
      "hello from allowed.test /connect",
      "hello from allowed.test http://allowed.test/absolute",
      "fetched through the allowlist",
      "fetched through the allowlist",
      "hello from allowed.test /python",
      "hello from allowed.test /node",
      "hello from allowed.test /python-proxy",
    ]) {
      assert.ok(out.includes(`${line}\n`), `missing ${JSON.stringify(line)} in:\n${out}`);
    }
    const allowed = (await networkLog()).filter((e) => e.kind === "connect" && e.decision === "allowed");
    assert.ok(allowed.length >= 10, JSON.stringify(allowed));
    for (const entry of allowed) {
      assert.equal(entry.name, "allowed.test");
      assert.equal(entry.upstream, net.address);
      assert.equal(entry.rule, "allowed.test");
      assert.ok((entry.bytes_in ?? 0) > 0 && (entry.bytes_out ?? 0) > 0, JSON.stringify(entry));
    }
  });

  it("refuses every other way out, and logs each refusal with its reason", async () => {
    const resolverQuery = (address: string) =>
      `python3 -c "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5); ` +
      `s.sendto(bytes.fromhex('123401000001000000000000' '07616c6c6f776564' '0474657374' '00' '0001' '0001'), ('${address}', 53)); ` +
      `print('rcode', s.recv(512)[3] & 15)"`;
    // One line per attempt: what the client printed (newlines folded) and its exit code.
    const attempt = (label: string, command: string) =>
      `out=$(${command} 2>&1); code=$?; echo "== ${label}: $(echo $out) exit=$code"`;
    const { out } = await sh(
      [
        attempt("other name", "curl -sS --max-time 10 http://other.test/"),
        attempt("raw address", `curl -sS --max-time 10 http://${net.address}/`),
        attempt("forged host", "curl -sS --max-time 10 -H 'Host: other.test' http://allowed.test/"),
        attempt(
          "forged sni",
          "curl -sSk --max-time 10 --resolve other.test:443:$(getent hosts allowed.test | cut -d' ' -f1) https://other.test/",
        ),
        attempt("relayed connect", "curl -sSk --max-time 10 -x http://allowed.test:80 https://other.test/"),
        attempt("proxy to other", `curl -sSk --max-time 10 -x ${PROXY} https://other.test/`),
        attempt("other resolver", resolverQuery(net.address)),
        attempt("loopback name", "curl -sS --max-time 10 http://loopy.test/"),
        attempt("host address name", "curl -sS --max-time 10 http://self.test/"),
        attempt("other port", "curl -sS --max-time 10 http://allowed.test:8081/"),
        attempt(
          "udp",
          `python3 -c "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); ` +
            `[s.sendto(b'x' * 100, ('${net.address}', 9999)) for _ in range(3)]; ` +
            `s.sendto(b'quic', ('allowed.test', 443)); print('sent')"`,
        ),
      ].join("\n"),
    );
    const line = (label: string) => out.split("\n").find((l) => l.startsWith(`== ${label}:`)) ?? `(no ${label} line)`;
    assert.match(line("other name"), /Could not resolve host: other\.test.* exit=6/);
    assert.match(line("raw address"), new RegExp(`pyro egress: ${net.address.replaceAll(".", "\\.")} is an address`));
    assert.match(line("forged host"), /pyro egress: the HTTP Host "other\.test" is not allowed\.test/);
    assert.doesNotMatch(line("forged sni"), /hello from/);
    assert.match(line("forged sni"), /exit=35/);
    assert.match(line("relayed connect"), /CONNECT tunnel failed, response 403/);
    assert.match(line("proxy to other"), /CONNECT tunnel failed, response 403/);
    assert.match(line("other resolver"), /rcode 5 exit=0/);
    assert.match(
      line("loopback name"),
      /pyro egress: loopy\.test resolves only to refused addresses \(127\.0\.0\.1 is/,
    );
    assert.match(
      line("host address name"),
      new RegExp(
        `self\\.test resolves only to refused addresses \\(${net.address.replace(/\.\d+$/, "").replaceAll(".", "\\.")}\\.\\d+ is one of this host's own addresses`,
      ),
    );
    // A port no rule names: the gateway's discard socket takes the connection and resets it at once,
    // so curl sees a refused connect (7) or, if it already counted it open, a reset (55, 56).
    assert.match(line("other port"), /curl: \((7|55|56)\) .*exit=(7|55|56)$/);
    assert.match(line("udp"), /sent exit=0/);
    assert.doesNotMatch(out, /hello from/);

    // Refused UDP is counted for a second per flow before its entry is written.
    let denied: Awaited<ReturnType<typeof networkLog>> = [];
    for (let tries = 0; tries < 50; tries++) {
      denied = (await networkLog()).filter((e) => e.decision === "denied");
      if (denied.filter((e) => e.kind === "udp").length >= 2) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const has = (what: string, match: (e: (typeof denied)[number]) => boolean) =>
      assert.ok(denied.some(match), `no log entry for ${what} in ${JSON.stringify(denied, null, 1)}`);
    has("the other name", (e) => e.kind === "dns" && e.name === "other.test" && /no allow rule names/.test(e.reason));
    has("the raw address", (e) => e.address === net.address && /is an address, not a name/.test(e.reason));
    has("the forged Host", (e) => /HTTP Host "other\.test"/.test(e.reason));
    has("the forged SNI", (e) => /TLS server name "other\.test" is not allowed\.test/.test(e.reason));
    has("the relayed CONNECT", (e) => e.name === "allowed.test" && /CONNECT/.test(e.reason));
    has("the proxy CONNECT", (e) => e.name === "other.test" && e.port === 443 && /no allow rule covers/.test(e.reason));
    has("the other resolver", (e) => e.kind === "dns" && /another resolver/.test(e.reason));
    has("the loopback name", (e) => e.name === "loopy.test" && /refused addresses/.test(e.reason));
    has("the host's own address", (e) => e.name === "self.test" && /host's own/.test(e.reason));
    has(
      "the port no rule allows",
      (e) =>
        e.kind === "connect" &&
        e.name === "allowed.test" &&
        e.port === 8081 &&
        /no allow rule covers allowed\.test:8081/.test(e.reason),
    );
    has(
      "UDP to an address",
      (e) =>
        e.kind === "udp" && e.address === net.address && e.port === 9999 && e.datagrams === 3 && e.bytes_out === 300,
    );
    has(
      "UDP to an allowed name",
      (e) => e.kind === "udp" && e.name === "allowed.test" && e.port === 443 && /nowhere but DNS/.test(e.reason),
    );
  });

  it("applies rules added or removed while the workspace runs, at the next connection", async () => {
    assert.equal((await sh("curl -sS --max-time 10 http://later.test/")).code, 6);
    const added = await ws.update({ workspace: id, allow_hosts: ["later.test"], remove_hosts: ["allowed.test"] });
    assert.deepEqual(added.network_rules?.allow, ["loopy.test", "self.test", "later.test"]);
    const { out } = await sh(
      'curl -sS --max-time 10 http://later.test/now; echo "later=$?"; curl -sS --max-time 10 http://allowed.test/; echo "allowed=$?"',
    );
    assert.match(out, /hello from later\.test \/now\nlater=0/);
    assert.match(out, /allowed=6/);
    assert.equal((await ws.policyCheck({ workspace: id, url: "https://allowed.test/" })).allowed, false);
    assert.equal((await ws.policyCheck({ workspace: id, url: "http://later.test/" })).rule, "later.test");
    // The CLI's dry run exits 0 or 1, and its network log is a table a person can read.
    const yes = await runCli(stateDir, ["workspace", "policy", "check", id, "http://later.test/x"]);
    assert.deepEqual([yes.code, yes.stdout], [0, "allowed: later.test:80 (allowed by rule later.test)\n"]);
    const no = await runCli(stateDir, ["workspace", "policy", "check", id, "allowed.test:443"]);
    assert.deepEqual([no.code, no.stdout], [1, "denied: allowed.test:443 (no allow rule covers allowed.test:443)\n"]);
    const table = await runCli(stateDir, ["workspace", "logs", id, "--network", "--limit", "5"]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^TIME +KIND +DECISION +DESTINATION +BYTES OUT\/IN +REASON\n/);
    assert.equal(table.stdout.trim().split("\n").length, 6);
    assert.match(table.stdout, /denied +allowed\.test +- +no allow rule names allowed\.test/);
    const status = await ws.status({ workspace: id });
    assert.deepEqual(status.network_rules, {
      allow: ["loopy.test", "self.test", "later.test"],
      deny: ["other.test:8080"],
    });
  });

  it("an MCP client on the default workspace-core profile installs from a preset's registry, and only that", async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [PYRO_BIN, "mcp", "serve"],
      // An empty project directory: the workspace is not seeded with this checkout.
      cwd: host,
      env: { ...process.env, PYRO_STATE_DIR: stateDir, PYRO_ENGINE: ENGINE } as Record<string, string>,
      stderr: "pipe",
    });
    const client = new Client({ name: "pyro-allowlist", version: "1" });
    await client.connect(transport);
    try {
      const call = async (name: string, args: Record<string, unknown>) => {
        const result = await client.callTool({ name, arguments: args });
        assert.notEqual(result.isError, true, JSON.stringify(result.content));
        return result.structuredContent as Record<string, unknown>;
      };
      const created = await call("workspace_create", { network_policy: "allowlist", allow_presets: ["npm"] });
      assert.deepEqual(created.network_rules, { allow: ["registry.npmjs.org", "registry.yarnpkg.com"], deny: [] });
      const ran = await call("workspace_exec", {
        workspace: created.workspace_id,
        command:
          "curl -sSk --max-time 20 https://registry.npmjs.org/left-pad; curl -sS --max-time 10 http://allowed.test/; echo other=$?",
      });
      assert.equal(ran.stdout, "hello from registry.npmjs.org /left-pad\nother=6\n", String(ran.stderr));
      await call("workspace_delete", { workspace: created.workspace_id });
    } finally {
      await client.close();
    }
  });

  it("sends a bound credential to its own host alone; the guest holds a placeholder and never sees the value", async () => {
    const secret = `s3cr3t-${randomBytes(12).toString("hex")}`;
    // The gateway verifies the fake internet's certificate as the host's own clients would.
    process.env.NODE_EXTRA_CA_CERTS = net.caFile;
    let bound: Awaited<ReturnType<typeof create>>;
    try {
      bound = await create({
        network_policy: "allowlist",
        allow_hosts: ["bound.test", "allowed.test"],
        secrets: [{ name: "API_TOKEN", value: secret, hosts: ["bound.test"] }],
        ca_files: [net.caFile],
      });
    } finally {
      delete process.env.NODE_EXTRA_CA_CERTS;
    }
    const meta = bound.secrets[0]!;
    assert.deepEqual(meta.hosts, ["bound.test"]);
    assert.match(meta.placeholder ?? "", /^pyro-placeholder-API_TOKEN-[0-9a-f]{32}$/);
    const placeholder = meta.placeholder!;
    const result = await ws.exec({
      workspace: bound.workspace_id,
      secret_env: { API_TOKEN: "API_TOKEN" },
      command: [
        'echo "env=$API_TOKEN"',
        'curl -sS --max-time 20 -H "Authorization: Bearer $API_TOKEN" https://bound.test/bound',
        'curl -sS --max-time 20 -H "Authorization: Bearer $API_TOKEN" https://allowed.test/elsewhere',
        "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep '^API_TOKEN=' | sort -u",
      ].join("; "),
      timeout_seconds: 120,
    });
    assert.equal(result.exit_code, 0, result.stderr);
    const masked = "*".repeat(secret.length);
    assert.equal(
      result.stdout,
      `env=${placeholder}\nhello from bound.test /bound auth=Bearer ${masked}\nhello from allowed.test /elsewhere auth=Bearer ${placeholder}\nAPI_TOKEN=${placeholder}\n`,
    );
    // What arrived: the value at its own host, the placeholder anywhere else.
    const seen = (await readFile(net.requestsFile, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { url: string; authorization: string | null });
    assert.equal(seen.find((r) => r.url === "/bound")?.authorization, `Bearer ${secret}`);
    assert.equal(seen.find((r) => r.url === "/elsewhere")?.authorization, `Bearer ${placeholder}`);
    const logged = (await ws.logs({ workspace: bound.workspace_id, network: true })).network ?? [];
    assert.ok(
      logged.some((e) => e.name === "bound.test" && e.credentials?.includes("API_TOKEN")),
      JSON.stringify(logged),
    );
    // Nowhere on the host but the 0600 secrets file: not the record, the network log, the supervisor's.
    const dir = ws.records.paths(bound.workspace_id).dir;
    const { stdout: holders } = await promisify(execFile)("grep", ["-rl", "--", secret, dir]).catch(
      (e) => e as { stdout: string },
    );
    assert.deepEqual(holders.trim().split("\n").filter(Boolean), [ws.records.paths(bound.workspace_id).secrets]);
  });

  it("keeps its rules across a restart, and leaves no namespace behind once deleted", async () => {
    await ws.stop({ workspace: id });
    await ws.start({ workspace: id });
    assert.match((await sh("curl -sS --max-time 10 http://later.test/again")).out, /hello from later\.test \/again/);
    await ws.delete({ workspace: id });
    assert.equal(existsSync(`/run/netns/pyro-${id}`), false);
  });
});
