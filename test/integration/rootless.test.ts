// Rootless pyro: an ordinary user with no sudo, a clean HOME and only what an administrator
// installed, runs the workspace flow on gvisor and on qemu through the `pyro` program, and an MCP
// client's vm_run through `pyro mcp serve`. As root, the test makes that user (with a subordinate id
// range, as useradd gives every new user on Debian); as an ordinary user, it is that user.
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { RunResult } from "../../src/contract/schemas.js";
import { createFakeInternet } from "../helpers/fake-internet.js";
import { httpAnnouncement } from "../helpers/mcp-http.js";
import { createOutsideNamespace, type OutsideNamespace } from "../helpers/netns.js";
import { AS_ROOT, type RootlessUser, rootlessUser } from "../helpers/rootless.js";

const run = promisify(execFile);
const ENGINES = ["gvisor", "qemu"] as const;

let user: RootlessUser;
let home: string;
let uid: number;
let outside: OutsideNamespace | undefined;

async function pyro(args: string[], opts: { engine?: string; env?: Record<string, string> } = {}) {
  const argv = user.argv([process.execPath, user.pyro, ...args], {
    ...(opts.engine ? { PYRO_ENGINE: opts.engine } : {}),
    ...opts.env,
  });
  try {
    const { stdout, stderr } = await run(argv[0]!, argv.slice(1), { cwd: home, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

async function pyroJson<T = Record<string, unknown>>(args: string[], engine?: string): Promise<T> {
  const dash = args.indexOf("--");
  const withJson = dash < 0 ? [...args, "--json"] : [...args.slice(0, dash), "--json", ...args.slice(dash)];
  const r = await pyro(withJson, { engine });
  assert.equal(r.code, 0, `pyro ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

before(async () => {
  user = rootlessUser("pyro-rootless-test");
  ({ home, uid } = user);
  if (AS_ROOT) outside = await createOutsideNamespace();
});

after(async () => {
  await outside?.teardown();
  // The user's namespace holder (and anything a failed test left) goes with the user's processes.
  user?.remove();
});

/** Which pids cgroup a command runs in, and that cgroup's limit. */
const PIDS_PROBE =
  "printf '%s %s\\n' \"$(grep -o 'pids:.*' /proc/self/cgroup)\" \"$(cat /run/pyro-cgroup/pids/pyro-work/pids.max)\"";

describe("rootless: an ordinary user runs pyro", () => {
  it("doctor names rootless mode, and the user's state and cache are the user's alone", async () => {
    const report = await pyroJson<{ ok: boolean; checks: Array<{ name: string; ok: boolean; detail: string }> }>([
      "doctor",
    ]);
    const privileges = report.checks.find((c) => c.name === "privileges");
    assert.equal(privileges?.ok, true, JSON.stringify(privileges));
    assert.match(privileges!.detail, new RegExp(`^rootless: uid ${uid} `));
    assert.equal(report.ok, true, JSON.stringify(report.checks.filter((c) => !c.ok)));
    for (const dir of [join(home, ".local", "state", "pyro"), join(home, ".cache", "pyro")]) {
      const st = statSync(dir);
      assert.equal(st.uid, uid, `${dir} belongs to the user`);
      assert.equal(st.mode & 0o777, 0o700, `${dir} is private to the user`);
    }
  });

  it("builds debian:12 in the user's own cache", { timeout: 10 * 60_000 }, async () => {
    const pulled = await pyro(["env", "pull", "debian:12"]);
    assert.equal(pulled.code, 0, pulled.stderr);
    const rootfs = join(home, ".cache", "pyro", "environments", "debian_12-v1", "rootfs");
    assert.equal(statSync(join(rootfs, "etc", "hostname")).uid, uid, "guest root's files are the user's on the host");
  });

  it("a seed the user cannot read is refused by name, and nothing is created", async () => {
    if (!AS_ROOT) return; // an ordinary user cannot make a directory that user cannot read back
    const outer = mkdtempSync(join(tmpdir(), "pyro-test-rootless-seed-"));
    try {
      chmodSync(outer, 0o755);
      writeFileSync(join(outer, "readme"), "anyone\n");
      mkdirSync(join(outer, "private"), { mode: 0o700 });
      writeFileSync(join(outer, "private", "key"), "root only\n");
      for (const [seed, named] of [
        [join(outer, "private"), join(outer, "private")],
        [outer, join(outer, "private")],
      ] as const) {
        const r = await pyro(["workspace", "create", "debian:12", "--seed-path", seed]);
        assert.equal(r.code, 1, `seeding ${seed} must fail: ${r.stdout}`);
        assert.ok(r.stderr.includes(`cannot be read by this user`), r.stderr);
        assert.ok(r.stderr.includes(named), `the error names ${named}: ${r.stderr}`);
        assert.doesNotMatch(r.stderr, /bug in pyro|at .*\.mjs/);
      }
      const list = await pyroJson<{ workspaces: unknown[] }>(["workspace", "list"]);
      assert.deepEqual(list.workspaces, [], "a refused seed leaves no workspace behind");
    } finally {
      rmSync(outer, { recursive: true, force: true });
    }
  });

  for (const engine of ENGINES) {
    it(`${engine}: one-shot run, then a seeded workspace through its whole life`, {
      timeout: 10 * 60_000,
    }, async () => {
      const once = await pyro(["run", "--engine", engine, "debian:12", "--", "sh", "-c", "id -u; echo ok"]);
      assert.equal(once.code, 0, once.stderr);
      assert.equal(once.stdout, "0\nok\n", "the command runs as root inside the guest");

      const seed = join(home, `repo-${engine}`);
      mkdirSync(seed);
      writeFileSync(join(seed, "greet.sh"), "echo hello\n");
      if (AS_ROOT) chownSync(seed, uid, uid);
      if (AS_ROOT) chownSync(join(seed, "greet.sh"), uid, uid);
      const name = `rl-${engine}`;
      const created = await pyroJson<{ workspace_id: string; engine: string }>(
        [
          "workspace",
          "create",
          "debian:12",
          "--name",
          name,
          "--seed-path",
          seed,
          "--network-policy",
          "egress+published-ports",
          "--secret",
          "API_TOKEN=rootless-secret-42",
        ],
        engine,
      );
      assert.equal(created.engine, engine);
      try {
        const exec = await pyro(["workspace", "exec", name, "--", "sh", "greet.sh"]);
        assert.equal(exec.stdout, "hello\n", exec.stderr);
        // The guest's process limit needs no host cgroup, so it holds rootless too.
        const limit = await pyro(["workspace", "exec", name, "--", "sh", "-c", PIDS_PROBE]);
        assert.equal(limit.stdout, "pids:/pyro-work 512\n", limit.stderr);

        const patchFile = join(home, `fix-${engine}.diff`);
        writeFileSync(patchFile, "--- a/greet.sh\n+++ b/greet.sh\n@@ -1 +1,2 @@\n echo hello\n+echo rootless\n");
        if (AS_ROOT) chownSync(patchFile, uid, uid);
        const applied = await pyro(["workspace", "patch", "apply", name, "--patch-file", patchFile]);
        assert.equal(applied.code, 0, applied.stderr);
        const diff = await pyro(["workspace", "diff", name]);
        assert.match(diff.stdout, /\+echo rootless/);

        assert.equal(
          (await pyro(["workspace", "file", "write", name, "notes.txt", "--text", "from the host"])).code,
          0,
        );
        assert.equal((await pyro(["workspace", "file", "read", name, "notes.txt"])).stdout, "from the host");

        const secret = await pyro([
          "workspace",
          "exec",
          name,
          "--secret-env",
          "API_TOKEN",
          "--",
          "sh",
          "-c",
          'echo "$API_TOKEN" | wc -c; echo "$API_TOKEN"',
        ]);
        assert.equal(secret.stdout, "19\n[REDACTED]\n", "the command sees the secret; its output never shows it");
        const secrets = join(home, ".local", "state", "pyro", "workspaces", created.workspace_id, "secrets.json");
        assert.equal(statSync(secrets).mode & 0o777, 0o600, "the secrets file is the user's alone");

        const pushDir = join(home, `push-${engine}`);
        mkdirSync(join(pushDir, "lib"), { recursive: true });
        writeFileSync(join(pushDir, "lib", "util.sh"), "echo util\n");
        if (AS_ROOT) execFileSync("chown", ["-R", `${uid}:${uid}`, pushDir]);
        const pushed = await pyro(["workspace", "sync", "push", name, pushDir, "--dest", "/workspace/pushed"]);
        assert.equal(pushed.code, 0, pushed.stderr);
        assert.equal((await pyro(["workspace", "exec", name, "--", "sh", "pushed/lib/util.sh"])).stdout, "util\n");

        if (AS_ROOT) {
          const denied = await pyro([
            "workspace",
            "export",
            name,
            "greet.sh",
            "--output",
            "/root/pyro-rootless-export.sh",
          ]);
          assert.equal(denied.code, 1, "the user cannot write under /root, so neither can the user's pyro");
          assert.match(
            denied.stderr,
            /output_path \/root\/pyro-rootless-export.sh cannot be written by this user: EACCES/,
          );
          assert.doesNotMatch(denied.stderr, /bug in pyro|\n\s+at /);
          assert.equal(existsSync("/root/pyro-rootless-export.sh"), false);
        }

        const out = join(home, `export-${engine}.sh`);
        const exported = await pyro(["workspace", "export", name, "greet.sh", "--output", out]);
        assert.equal(exported.code, 0, exported.stderr);
        assert.equal(readFileSync(out, "utf8"), "echo hello\necho rootless\n");
        assert.equal(statSync(out).uid, uid, "an exported file belongs to the user");

        assert.equal((await pyro(["workspace", "snapshot", "create", name, "patched"])).code, 0);
        assert.equal((await pyro(["workspace", "reset", name])).code, 0);
        assert.equal((await pyro(["workspace", "exec", name, "--", "sh", "greet.sh"])).stdout, "hello\n");
        assert.equal((await pyro(["workspace", "reset", name, "--snapshot", "patched"])).code, 0);

        assert.equal((await pyro(["workspace", "stop", name])).code, 0);
        const disk = await pyro(["workspace", "disk", "read", name, "greet.sh"]);
        assert.equal(disk.stdout, "echo hello\necho rootless\n", `disk tools read a stopped workspace: ${disk.stderr}`);
        const image = join(home, `disk-${engine}.ext4`);
        const diskExport = await pyro(["workspace", "disk", "export", name, "--output", image]);
        assert.equal(diskExport.code, 0, diskExport.stderr);
        assert.equal(statSync(image).uid, uid, "the disk image belongs to the user");
        if (AS_ROOT) {
          const refused = await pyro(["workspace", "disk", "export", name, "--output", "/root/pyro-rootless.ext4"]);
          assert.equal(refused.code, 1);
          assert.match(refused.stderr, /output_path \/root\/pyro-rootless.ext4 cannot be written by this user: EACCES/);
        }
        assert.equal((await pyro(["workspace", "start", name])).code, 0);
        assert.equal((await pyro(["workspace", "exec", name, "--", "sh", "greet.sh"])).stdout, "hello\nrootless\n");

        const shell = (await pyro(["workspace", "shell", "open", name, "--id-only"])).stdout.trim();
        assert.ok(shell, "a shell opens");
        await pyro(["workspace", "shell", "write", name, shell, "--input", "echo from-$((6*7))"]);
        const read = await pyro(["workspace", "shell", "read", name, shell, "--wait-for-idle-ms", "500", "--plain"]);
        assert.match(read.stdout, /from-42/);
        assert.equal((await pyro(["workspace", "shell", "close", name, shell])).code, 0);

        const service = await pyroJson<{ published_ports: Array<{ host_port: number }> }>([
          "workspace",
          "service",
          "start",
          name,
          "web",
          "--publish",
          "8000",
          "--ready-tcp",
          "127.0.0.1:8000",
          "--",
          "python3",
          "-m",
          "http.server",
          "8000",
        ]);
        const port = service.published_ports[0]?.host_port;
        assert.ok(port, JSON.stringify(service));
        const page = await fetch(`http://127.0.0.1:${port}/greet.sh`);
        assert.equal(await page.text(), "echo hello\necho rootless\n", "the published port answers on the host");

        if (outside) {
          const probe = await pyro([
            "workspace",
            "exec",
            name,
            "--",
            "python3",
            "-c",
            "import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2])), 5); print(s.recv(100).decode().strip())",
            outside.nsAddr,
            String(outside.server.port),
          ]);
          assert.equal(probe.stdout.trim(), outside.greeting, `egress reaches the outside server: ${probe.stderr}`);
        }
      } finally {
        const deleted = await pyro(["workspace", "delete", name]);
        assert.equal(deleted.code, 0, deleted.stderr);
      }
      const doctor = await pyroJson<{ leftovers: { found: number } }>(["doctor"]);
      assert.equal(doctor.leftovers.found, 0);
    });
  }

  it("allowlist: the user's own gateway lets an allowed name through and refuses another", {
    skip: AS_ROOT ? false : "the fake internet's namespace needs root",
    timeout: 5 * 60_000,
  }, async () => {
    const net = await createFakeInternet(["allowed.test", "other.test"]);
    try {
      // The user reads the hosts file and the CA, as it would its own.
      chmodSync(dirname(net.hostsFile), 0o755);
      const env = { PYRO_EGRESS_HOSTS: net.hostsFile };
      const flags = ["--network-policy", "allowlist", "--allow-host", "allowed.test", "--ca-file", net.caFile];
      const created = await pyro(["workspace", "create", "debian:12", "--name", "rl-allow", ...flags], { env });
      assert.equal(created.code, 0, created.stderr);
      const probe = await pyro([
        "workspace",
        "exec",
        "rl-allow",
        "--",
        "sh",
        "-c",
        "curl -sS --max-time 20 https://allowed.test/rootless; curl -sS --max-time 10 http://other.test/; echo other=$?; " +
          `python3 -c "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'quic', ('allowed.test', 443))"`,
      ]);
      assert.equal(probe.stdout, "hello from allowed.test /rootless\nother=6\n", probe.stderr);
      // The user's own nftables table in the user's namespace turns UDP to the gateway, which logs
      // it (a second after the flow's first datagram).
      type Entry = { kind: string; decision: string; name?: string; port?: number };
      let entries: Entry[] = [];
      let log = { stdout: "" };
      for (let tries = 0; tries < 30; tries++) {
        log = await pyro(["workspace", "logs", "rl-allow", "--network", "--json"]);
        entries = (JSON.parse(log.stdout) as { network: Entry[] }).network;
        if (entries.some((e) => e.kind === "udp")) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.ok(
        entries.some((e) => e.decision === "denied" && e.name === "other.test"),
        log.stdout,
      );
      assert.ok(
        entries.some((e) => e.kind === "udp" && e.decision === "denied" && e.name === "allowed.test" && e.port === 443),
        log.stdout,
      );
      assert.equal((await pyro(["workspace", "delete", "rl-allow"])).code, 0);
    } finally {
      await net.teardown();
    }
  });

  it("an MCP client's vm_run works through the user's pyro mcp serve", { timeout: 5 * 60_000 }, async () => {
    const argv = user.argv([process.execPath, user.pyro, "mcp", "serve", "--profile", "vm-run"]);
    const client = new Client({ name: "pyro-rootless-test", version: "1.0.0" });
    await client.connect(
      new StdioClientTransport({ command: argv[0]!, args: argv.slice(1), cwd: home, stderr: "pipe" }),
    );
    try {
      const result = await client.callTool({ name: "vm_run", arguments: { command: "id -u" } });
      assert.notEqual(result.isError, true, JSON.stringify(result.content));
      const parsed = RunResult.parse(result.structuredContent);
      assert.equal(parsed.exit_code, 0);
      assert.equal(parsed.stdout, "0\n");
    } finally {
      await client.close();
    }
  });
});

describe("rootless: pyro mcp serve --transport http as the user", () => {
  it("announces its URL and token, and an MCP client's vm_run works over HTTP", { timeout: 5 * 60_000 }, async () => {
    const argv = user.argv([
      process.execPath,
      user.pyro,
      "mcp",
      "serve",
      "--transport",
      "http",
      "--json",
      "--profile",
      "vm-run",
    ]);
    const child = spawn(argv[0]!, argv.slice(1), { cwd: home, stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise((r) => child.once("exit", r));
    try {
      const { url, token } = await httpAnnouncement(child);
      const client = new Client({ name: "pyro-rootless-http", version: "1" });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(url), {
          requestInit: { headers: { authorization: `Bearer ${token}` } },
        }),
      );
      try {
        const result = await client.callTool({ name: "vm_run", arguments: { command: "id -u" } });
        assert.notEqual(result.isError, true, JSON.stringify(result.content));
        assert.equal(RunResult.parse(result.structuredContent).stdout, "0\n");
      } finally {
        await client.close();
      }
    } finally {
      child.kill("SIGTERM");
      const stopped = await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)]);
      assert.ok(stopped, "SIGTERM to the user's server (through runuser, the launcher and nsenter) stops it");
    }
  });
});

describe("rootless: a user pyro cannot serve is told why and how to fix it, at once", () => {
  let nosub: RootlessUser;
  before(() => {
    if (AS_ROOT) nosub = rootlessUser("pyro-rootless-nosub", { subordinateIds: false });
  });
  after(() => nosub?.remove());

  const asNosub = async (args: string[]) => {
    const argv = nosub.argv([process.execPath, nosub.pyro, ...args]);
    const started = Date.now();
    try {
      const { stdout, stderr } = await run(argv[0]!, argv.slice(1), { cwd: nosub.home });
      return { code: 0, stdout, stderr, ms: Date.now() - started };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? 1, stdout: e.stdout ?? "", stderr: e.stderr ?? "", ms: Date.now() - started };
    }
  };
  const PROBLEM = "has no subordinate uid/gid range";
  const FIX = /usermod --add-subuids \S+ --add-subgids \S+ pyro-rootless-nosub/;

  it("doctor fails on privileges with the usermod fix; run and host doctor fail at once with the same words", async () => {
    if (!AS_ROOT) return; // needs root to make a user without subordinate ids
    const doctor = await asNosub(["doctor", "--json"]);
    assert.equal(doctor.code, 1);
    const report = JSON.parse(doctor.stdout) as {
      checks: Array<{ name: string; ok: boolean; detail: string; fix?: string }>;
    };
    const privileges = report.checks.find((c) => c.name === "privileges");
    assert.equal(privileges?.ok, false);
    assert.equal(privileges?.detail, `user pyro-rootless-nosub ${PROBLEM}`);
    assert.match(privileges?.fix ?? "", FIX);

    const once = await asNosub(["run", "debian:12", "--", "true"]);
    assert.equal(once.code, 1);
    assert.match(once.stderr, FIX);
    assert.equal(once.stderr.split(PROBLEM).length - 1, 1, `said once, not once per engine: ${once.stderr}`);
    assert.ok(once.ms < 10_000, `failed at once, not after an environment build (${once.ms} ms)`);

    const pull = await asNosub(["env", "pull", "debian:12"]);
    assert.equal(pull.code, 1);
    assert.match(pull.stderr, /cannot build debian:12: sandboxes cannot start as this user: .*has no subordinate/);
    assert.doesNotMatch(pull.stderr, /bug in pyro/);
    assert.ok(pull.ms < 10_000, `refused before any bootstrap (${pull.ms} ms)`);
    const cache = join(nosub.home, ".cache", "pyro", "environments");
    const debris = existsSync(cache) ? readdirSync(cache).filter((n) => n.startsWith(".partial-")) : [];
    assert.deepEqual(debris, [], "a refused build leaves no .partial-* directory");

    const host = await asNosub(["host", "doctor", "--json"]);
    assert.equal(host.code, 1, "a server that can run nothing does not pass host doctor");
    const hostReport = JSON.parse(host.stdout) as { server: { ok: boolean; detail: string }; fix: string };
    assert.equal(hostReport.server.ok, false);
    assert.ok(hostReport.server.detail.includes(PROBLEM), hostReport.server.detail);
    assert.match(hostReport.fix, /pyro doctor/);
  });

  it("pyro mcp serve says so first in its instructions, and a tool call fails at once with the fix", async () => {
    if (!AS_ROOT) return;
    const argv = nosub.argv([process.execPath, nosub.pyro, "mcp", "serve"]);
    const client = new Client({ name: "pyro-rootless-test", version: "1.0.0" });
    await client.connect(
      new StdioClientTransport({ command: argv[0]!, args: argv.slice(1), cwd: nosub.home, stderr: "pipe" }),
    );
    try {
      assert.match(
        client.getInstructions() ?? "",
        /^pyro cannot run here: every tool fails until this is fixed: .*has no subordinate uid\/gid range/,
      );
      const started = Date.now();
      const result = await client.callTool({ name: "vm_run", arguments: { command: "true" } });
      assert.equal(result.isError, true);
      const text = (result.content as Array<{ text: string }>).map((c) => c.text).join("\n");
      assert.match(text, /ENGINE_UNAVAILABLE/);
      assert.match(text, FIX);
      assert.ok(Date.now() - started < 10_000, "the call fails at once");
    } finally {
      await client.close();
    }
  });
});
