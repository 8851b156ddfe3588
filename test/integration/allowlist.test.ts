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
import { appendFile, readFile, writeFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { startCorpProxy } from "../helpers/corp-proxy.js";
import { ENGINE } from "../helpers/engine.js";
import { createFakeInternet, type FakeInternet } from "../helpers/fake-internet.js";
import { publishNpmPackage, publishWheel } from "../helpers/fake-registries.js";
import { PYRO_BIN, runCli, workspaceSuite } from "../helpers/workspace-suite.js";

const ROOT = process.getuid?.() === 0;
const PROXY = "http://198.18.0.1:3128";
/** The node every environment carries for pyro's agent, run through its own loader and libraries. */
const NODE = "/opt/pyro/lib/ld-linux-x86-64.so.2 --library-path /opt/pyro/lib /opt/pyro/bin/node";

describe(`network policy allowlist (${ENGINE})`, { skip: ROOT ? false : "the fake internet needs root" }, () => {
  const { ws, manager, create, stateDir, host } = workspaceSuite("allow");
  let net: FakeInternet;
  let id = "";

  before(async () => {
    net = await createFakeInternet([
      "allowed.test",
      "other.test",
      "later.test",
      "registry.npmjs.org",
      "bound.test",
      "pypi.org",
      "files.pythonhosted.org",
      "corp-only.test",
    ]);
    // Only the company proxy of the host_proxy case knows where corp-only.test is.
    await writeFile(net.hostsFile, (await readFile(net.hostsFile, "utf8")).replace(" corp-only.test", ""));
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

  it("the guest's own npm, pip and git fetch from allowed registries, directly and through proxy variables", async () => {
    await publishNpmPackage(net, "pyro-pad", "1.0.0", 'module.exports = (s) => "[" + s + "]";\n');
    await publishWheel(net, "pyro_demo", "1.0.0", "def hello():\n    return 'hello from the wheel'\n");
    const build = await create({
      environment: "debian:12-build",
      network_policy: "allowlist",
      allow_presets: ["npm", "pypi"],
      allow_hosts: ["allowed.test"],
      ca_files: [net.caFile],
    });
    const npmInstall = (dir: string, flags = "") =>
      `mkdir -p ${dir} && cd ${dir} && npm init -y >/dev/null && ` +
      `npm install --no-audit --no-fund --no-update-notifier --cache ${dir}/.npm-cache ${flags} pyro-pad >/dev/null && ` +
      `node -e "console.log(require('pyro-pad')('npm ${flags ? "proxy" : "direct"}'))"`;
    const pipInstall = (venv: string, flags = "") =>
      `python3 -m venv ${venv} && ${venv}/bin/pip install -q --no-cache-dir ${flags} --index-url https://pypi.org/simple pyro-demo && ` +
      `${venv}/bin/python -c "import pyro_demo; print(pyro_demo.hello(), '${flags ? "proxy" : "direct"}')"`;
    const result = await ws.exec({
      workspace: build.workspace_id,
      timeout_seconds: 600,
      command: [
        "set -e",
        npmInstall("/tmp/npm-direct"),
        npmInstall("/tmp/npm-proxy", `--https-proxy ${PROXY}`),
        pipInstall("/tmp/venv-direct"),
        pipInstall("/tmp/venv-proxy", `--proxy ${PROXY}`),
        `https_proxy=${PROXY} git clone -q https://allowed.test/repo.git /tmp/git-proxy && cat /tmp/git-proxy/README.md`,
        `http_proxy=${PROXY} git clone -q http://allowed.test/repo.git /tmp/git-plain && cat /tmp/git-plain/README.md`,
      ].join("\n"),
    });
    assert.equal(result.exit_code, 0, `${result.stdout}\n${result.stderr}`);
    assert.equal(
      result.stdout,
      [
        "[npm direct]",
        "[npm proxy]",
        "hello from the wheel direct",
        "hello from the wheel proxy",
        "fetched through the allowlist",
        "fetched through the allowlist",
        "",
      ].join("\n"),
    );
    // The registries were reached by name, through the gateway; the proxied ones through port 3128.
    const requests = (await readFile(net.requestsFile, "utf8")).trim().split("\n");
    for (const [host, url] of [
      ["registry.npmjs.org", "/pyro-pad"],
      ["registry.npmjs.org", "/pyro-pad/-/pyro-pad-1.0.0.tgz"],
      ["pypi.org", "/simple/pyro-demo/"],
      ["files.pythonhosted.org", "/packages/pyro_demo-1.0.0-py3-none-any.whl"],
    ]) {
      const count = requests.filter((line) => {
        const r = JSON.parse(line) as { host: string; url: string };
        return r.host === host && r.url === url;
      }).length;
      assert.ok(count >= 2, `${host}${url} was asked for ${count} times:\n${requests.join("\n")}`);
    }
    const log = (await ws.logs({ workspace: build.workspace_id, network: true, limit: 1000 })).network ?? [];
    for (const name of ["registry.npmjs.org", "pypi.org", "files.pythonhosted.org", "allowed.test"]) {
      const allowed = log.filter((e) => e.kind === "connect" && e.decision === "allowed" && e.name === name);
      assert.ok(
        allowed.some((e) => e.port === 443 && e.address === "198.18.0.1"),
        `${name}: no proxied entry in ${JSON.stringify(allowed)}`,
      );
      assert.ok(
        name === "allowed.test" || allowed.some((e) => e.address !== "198.18.0.1"),
        `${name}: no direct entry in ${JSON.stringify(allowed)}`,
      );
    }
    assert.deepEqual(
      log.filter((e) => e.decision === "denied"),
      [],
    );
    await ws.delete({ workspace: build.workspace_id });
  });

  it("goes out through the host's explicit proxy (host_proxy): allowlist's gateway, and egress's own clients", async () => {
    const corp = await startCorpProxy(net);
    const saved = {
      HTTPS_PROXY: process.env.HTTPS_PROXY,
      NO_PROXY: process.env.NO_PROXY,
      NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS,
    };
    // create reads the proxy from pyro's environment: here, the test process's. The gateway verifies
    // the fake internet's certificate (for the bound credential) as the host's clients would.
    process.env.HTTPS_PROXY = corp.url;
    process.env.NO_PROXY = "later.test";
    process.env.NODE_EXTRA_CA_CERTS = net.caFile;
    const made: string[] = [];
    try {
      const gated = await create({
        network_policy: "allowlist",
        allow_hosts: ["corp-only.test", "later.test"],
        ca_files: [net.caFile],
        host_proxy: true,
        // A bound credential's requests take the same way out.
        secrets: [{ name: "CORP_TOKEN", value: "corp-token-value", hosts: ["corp-only.test"] }],
      });
      made.push(gated.workspace_id);
      assert.deepEqual(gated.host_proxy, { https: corp.url, no_proxy: "later.test" });
      const inside = await ws.exec({
        workspace: gated.workspace_id,
        command:
          "curl -sS --max-time 20 https://corp-only.test/corp; curl -sS --max-time 20 https://later.test/direct; " +
          'echo "proxy variables: $(env | grep -ci _proxy)"; ' +
          'curl -sS --max-time 20 -H "Authorization: Bearer $CORP_TOKEN" https://corp-only.test/corp-bound',
        secret_env: { CORP_TOKEN: "CORP_TOKEN" },
      });
      // The host cannot resolve corp-only.test: only the proxy reaches it. later.test is in
      // NO_PROXY, so the gateway dials it itself. The guest holds no proxy variables.
      assert.equal(
        inside.stdout,
        "hello from corp-only.test /corp\nhello from later.test /direct\nproxy variables: 0\n" +
          `hello from corp-only.test /corp-bound auth=Bearer ${"*".repeat("corp-token-value".length)}\n`,
        inside.stderr,
      );
      assert.deepEqual(corp.connects, ["CONNECT corp-only.test:443 HTTP/1.1", "CONNECT corp-only.test:443 HTTP/1.1"]);
      const corpRequests = (await readFile(net.requestsFile, "utf8"))
        .split("\n")
        .filter((l) => l.includes("/corp-bound"));
      assert.ok(
        corpRequests.some((l) => l.includes("corp-token-value")),
        corpRequests.join("\n"),
      );
      const log = (await ws.logs({ workspace: gated.workspace_id, network: true })).network ?? [];
      const through = log.find((e) => e.kind === "connect" && e.name === "corp-only.test");
      assert.equal(through?.upstream, net.hostAddress, JSON.stringify(log));
      assert.equal(log.find((e) => e.kind === "connect" && e.name === "later.test")?.upstream, net.address);

      const open = await create({ network_policy: "egress", host_proxy: true, ca_files: [net.caFile] });
      made.push(open.workspace_id);
      const egress = await ws.exec({
        workspace: open.workspace_id,
        command: 'echo "$https_proxy $HTTPS_PROXY $no_proxy"; curl -sS --max-time 20 https://corp-only.test/egress',
      });
      assert.equal(
        egress.stdout,
        `${corp.url} ${corp.url} later.test\nhello from corp-only.test /egress\n`,
        egress.stderr,
      );
      assert.deepEqual(corp.connects.slice(2), ["CONNECT corp-only.test:443 HTTP/1.1"]);

      // A proxy on the host's loopback is unreachable from a sandbox under egress: refused by name.
      process.env.HTTPS_PROXY = "http://127.0.0.1:3128";
      await assert.rejects(
        create({ network_policy: "egress", host_proxy: true }),
        /the host's proxy http:\/\/127\.0\.0\.1:3128 is on its loopback/,
      );
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
      for (const workspace of made) await ws.delete({ workspace }).catch(() => {});
      await corp.close();
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
        // gVisor gives the guest no ICMP socket; QEMU's user-mode network sends the ping on, and
        // the namespace would answer it itself if pyro did not drop it.
        attempt("ping", "ping -c 1 -W 2 198.51.100.1"),
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
    assert.doesNotMatch(line("ping"), /bytes from/);
    assert.doesNotMatch(line("ping"), /exit=0$/);
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
    const dir = manager.lifecycle.records.paths(bound.workspace_id).dir;
    const { stdout: holders } = await promisify(execFile)("grep", ["-rl", "--", secret, dir]).catch(
      (e) => e as { stdout: string },
    );
    assert.deepEqual(holders.trim().split("\n").filter(Boolean), [
      manager.lifecycle.records.paths(bound.workspace_id).secrets,
    ]);
  });

  it("keeps its rules across a restart, and leaves no namespace behind once deleted", async () => {
    await ws.stop({ workspace: id });
    await ws.start({ workspace: id });
    assert.match((await sh("curl -sS --max-time 10 http://later.test/again")).out, /hello from later\.test \/again/);
    await ws.delete({ workspace: id });
    assert.equal(existsSync(`/run/netns/pyro-${id}`), false);
  });
});
