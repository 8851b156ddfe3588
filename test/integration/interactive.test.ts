// Shells, services, published ports, secrets and network policy on real gVisor workspaces, through
// the manager (and the CLI where a second process matters): what an agent sees in each case.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { PyroError } from "../../src/contract/errors.js";
import { createOutsideNamespace, type OutsideNamespace, startHostLoopbackServer } from "../helpers/netns.js";
import { code, runCli, workspaceSuite } from "../helpers/workspace-suite.js";

const { stateDir, host, manager, ws, shells, services, create } = workspaceSuite("int");

const pyro = (args: string[]) => runCli(stateDir, args, 60_000);

/** A free port on the host's 127.0.0.1 (free when this returns). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function httpStatus(port: number): Promise<number | string> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let data = "";
    const timer = setTimeout(() => {
      socket.destroy();
      resolve("TIMEOUT");
    }, 5_000);
    socket.on("connect", () => socket.write("GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"));
    socket.on("data", (c: Buffer) => {
      data += c.toString();
    });
    socket.on("end", () => {
      clearTimeout(timer);
      resolve(Number(/^HTTP\/1\.\d (\d{3})/.exec(data)?.[1] ?? 0));
    });
    socket.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(e.code ?? e.message);
    });
  });
}

/** A TCP connect from inside the workspace: prints the server's greeting or the error's name. */
const PROBE = (hostName: string, port: number) =>
  `python3 -c "import socket
try:
    s = socket.create_connection(('${hostName}', ${port}), 3); print('OK', s.recv(100).decode().strip())
except Exception as e:
    print('FAIL', type(e).__name__)"`;

describe("shells", () => {
  let id: string;
  before(async () => {
    id = (await create({ name: "shells" })).workspace_id;
  });

  it("renders coloured, paced output as plain lines once it goes quiet", async () => {
    const shell = await shells.open({ workspace: id });
    assert.equal(shell.state, "running");
    assert.deepEqual([shell.cols, shell.rows], [120, 30]);
    await shells.write({
      workspace: id,
      shell_id: shell.shell_id,
      input: "clear; printf '\\033[1;31mred\\033[0m\\n'; for i in 1 2 3; do echo line$i; sleep 0.2; done",
    });
    const read = await shells.read({
      workspace: id,
      shell_id: shell.shell_id,
      plain: true,
      wait_for_idle_ms: 500,
    });
    assert.ok(!read.output.includes("\x1b"), JSON.stringify(read.output));
    const lines = read.output.split("\n").map((l) => l.trim());
    for (const expected of ["red", "line1", "line2", "line3"]) assert.ok(lines.includes(expected), read.output);
    assert.ok(lines.indexOf("line3") > lines.indexOf("red"));
    // Raw mode keeps the escape sequences.
    const raw = await shells.read({ workspace: id, shell_id: shell.shell_id });
    assert.ok(raw.output.includes("\x1b[1;31mred"));

    // From next_cursor only what is new.
    await shells.write({ workspace: id, shell_id: shell.shell_id, input: "echo fresh-$((40+2))" });
    const next = await shells.read({
      workspace: id,
      shell_id: shell.shell_id,
      cursor: read.next_cursor,
      wait_for_idle_ms: 300,
    });
    assert.equal(next.cursor, read.next_cursor);
    assert.ok(next.output.includes("fresh-42"));
    assert.ok(!next.output.includes("line1"));
    await shells.close({ workspace: id, shell_id: shell.shell_id });
  });

  it("shows a full-screen program as its screen", async () => {
    await ws.writeFile({ workspace: id, path: "notes.txt", text: "alpha line\nbeta line\n" });
    const shell = await shells.open({ workspace: id, cols: 80, rows: 12 });
    await shells.write({ workspace: id, shell_id: shell.shell_id, input: "vi notes.txt" });
    const screen = await shells.read({
      workspace: id,
      shell_id: shell.shell_id,
      plain: true,
      wait_for_idle_ms: 700,
    });
    const rows = screen.output.split("\n");
    assert.equal(rows[0]?.trimEnd(), "alpha line", screen.output);
    assert.equal(rows[1]?.trimEnd(), "beta line");
    assert.ok(
      rows.some((r) => r.startsWith("~")),
      "vi marks lines past the end with ~",
    );
    assert.ok(!screen.output.includes("\x1b"));
    assert.ok(rows.length <= 12);
    await shells.write({ workspace: id, shell_id: shell.shell_id, input: ":q!" });
    const back = await shells.read({
      workspace: id,
      shell_id: shell.shell_id,
      cursor: screen.next_cursor,
      plain: true,
      wait_for_idle_ms: 500,
    });
    assert.ok(!back.output.includes("alpha line"), back.output);
    await shells.close({ workspace: id, shell_id: shell.shell_id });
  });

  it("INT interrupts the foreground job and the shell stays usable; close ends every process", async () => {
    const shell = await shells.open({ workspace: id });
    const sid = shell.shell_id;
    await shells.write({ workspace: id, shell_id: sid, input: "sleep 1000 & sleep 100" });
    await new Promise((r) => setTimeout(r, 700));
    const t0 = Date.now();
    await shells.signal({ workspace: id, shell_id: sid, signal: "INT" });
    await shells.write({ workspace: id, shell_id: sid, input: "echo after-$((6*7))" });
    const after = await shells.read({ workspace: id, shell_id: sid, wait_for_idle_ms: 400 });
    assert.ok(after.output.includes("after-42"), after.output);
    assert.ok(Date.now() - t0 < 5_000);
    const running = await ws.exec({ workspace: id, command: "ps -eo args | grep -c '^sleep 1000' || true" });
    assert.equal(running.stdout.trim(), "1", "the background job survives INT to the foreground");
    const closed = await shells.close({ workspace: id, shell_id: sid });
    assert.equal(closed.state, "closed");
    await new Promise((r) => setTimeout(r, 500));
    const left = await ws.exec({ workspace: id, command: "ps -eo args | grep -c '^sleep 1000' || true" });
    assert.equal(left.stdout.trim(), "0");
    await assert.rejects(shells.write({ workspace: id, shell_id: sid, input: "x" }));
    await assert.rejects(shells.read({ workspace: id, shell_id: "sh-nope" }), code("SHELL_NOT_FOUND"));
  });

  it("a shell outlives the process that opened it (CLI open, CLI write, another process reads)", async () => {
    const opened = await pyro(["workspace", "shell", "open", "shells", "--id-only"]);
    assert.equal(opened.code, 0, opened.stderr);
    const sid = opened.stdout.trim();
    assert.match(sid, /^sh-/);
    const wrote = await pyro(["workspace", "shell", "write", "shells", sid, "--input", "echo from-cli-$((1+1))"]);
    assert.equal(wrote.code, 0, wrote.stderr);
    const read = await pyro([
      "workspace",
      "shell",
      "read",
      "shells",
      sid,
      "--plain",
      "--wait-for-idle-ms",
      "400",
      "--json",
    ]);
    assert.equal(read.code, 0, read.stderr);
    const payload = JSON.parse(read.stdout) as { output: string; plain: boolean; next_cursor: number };
    assert.ok(payload.output.includes("from-cli-2"), payload.output);
    assert.equal(payload.plain, true);
    const fromHere = await shells.read({ workspace: "shells", shell_id: sid });
    assert.ok(fromHere.output.includes("from-cli-2"));
    assert.equal((await pyro(["workspace", "shell", "close", "shells", sid])).code, 0);
  });
});

describe("services and published ports", () => {
  let id: string;
  before(async () => {
    id = (await create({ name: "services", network_policy: "egress+published-ports" })).workspace_id;
  });

  it("python3 -m http.server becomes ready, is reachable on the published host port, and closes on stop", async () => {
    const hostPort = await freePort();
    const started = await services.start({
      workspace: id,
      service_name: "web",
      command: "python3 -m http.server 8000",
      readiness: { type: "http", url: "http://127.0.0.1:8000/" },
      publish: [{ host_port: hostPort, guest_port: 8000 }],
    });
    assert.equal(started.state, "ready", JSON.stringify(started));
    assert.ok(started.ready_at);
    assert.deepEqual(started.published_ports, [{ host: "127.0.0.1", host_port: hostPort, guest_port: 8000 }]);
    assert.equal(await httpStatus(hostPort), 200);
    const status = await ws.status({ workspace: id });
    assert.equal(status.service_count, 1);
    assert.equal(status.running_service_count, 1);
    const logs = await services.logs({ workspace: id, service_name: "web" });
    assert.match(logs.stderr, /"GET \/ HTTP\/1\.[01]" 200/);

    const stopped = await services.stop({ workspace: id, service_name: "web" });
    assert.equal(stopped.state, "stopped");
    assert.deepEqual(stopped.published_ports, []);
    assert.equal(await httpStatus(hostPort), "ECONNREFUSED");
  });

  it("a port picked by pyro works; a taken host port is a clear error and starts nothing", async () => {
    const started = await services.start({
      workspace: id,
      service_name: "auto",
      command: ["python3", "-m", "http.server", "8001"],
      readiness: { type: "tcp", host: "127.0.0.1", port: 8001 },
      publish: [{ guest_port: 8001 }],
    });
    const port = started.published_ports[0]?.host_port ?? 0;
    assert.ok(port > 0);
    assert.equal(await httpStatus(port), 200);

    const squatter = await startHostLoopbackServer("taken");
    try {
      await assert.rejects(
        services.start({
          workspace: id,
          service_name: "clash",
          command: "python3 -m http.server 8002",
          readiness: { type: "tcp", host: "127.0.0.1", port: 8002 },
          publish: [{ host_port: squatter.port, guest_port: 8002 }],
        }),
        (e: PyroError) => e.code === "PORT_UNAVAILABLE" && e.message.includes(String(squatter.port)),
      );
    } finally {
      await squatter.stop();
    }
    const clash = await services.status({ workspace: id, service_name: "clash" });
    assert.equal(clash.state, "stopped");
    // Stopping the workspace closes the ports of services still running.
    await ws.stop({ workspace: id });
    assert.equal(await httpStatus(port), "ECONNREFUSED");
    await ws.start({ workspace: id });
  });

  it("a service that never becomes ready fails within its timeout, with its logs", async () => {
    const t0 = Date.now();
    const failed = await services.start({
      workspace: id,
      service_name: "never",
      command: "echo starting up; echo no port for you >&2; sleep 600",
      readiness: { type: "tcp", host: "127.0.0.1", port: 9 },
      ready_timeout_seconds: 2,
      ready_interval_ms: 200,
    });
    assert.ok(Date.now() - t0 < 8_000, `took ${Date.now() - t0} ms`);
    assert.equal(failed.state, "failed");
    assert.match(failed.reason ?? "", /not ready within 2 s/);
    assert.match(failed.log_tail?.stdout ?? "", /starting up/);
    assert.match(failed.log_tail?.stderr ?? "", /no port for you/);
    const cli = await pyro([
      "workspace",
      "service",
      "start",
      "services",
      "never2",
      "--ready-file",
      "/nope",
      "--ready-timeout-seconds",
      "1",
      "--",
      "sleep",
      "100",
    ]);
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /state:\s+failed/);
    const exited = await services.start({ workspace: id, service_name: "quick", command: "exit 3" });
    await new Promise((r) => setTimeout(r, 500));
    const status = await services.status({ workspace: id, service_name: "quick" });
    assert.ok(["running", "exited"].includes(exited.state));
    assert.equal(status.state, "exited");
    assert.equal(status.exit_code, 3);
  });

  it("publishing needs the egress+published-ports policy", async () => {
    const off = await create({ name: "no-ports" });
    await assert.rejects(
      services.start({
        workspace: off.workspace_id,
        service_name: "web",
        command: "sleep 10",
        publish: [{ guest_port: 8000 }],
      }),
      code("NETWORK_POLICY_DENIED"),
    );
  });
});

describe("network policy", () => {
  let outside: OutsideNamespace;
  let loopback: Awaited<ReturnType<typeof startHostLoopbackServer>>;
  before(async () => {
    outside = await createOutsideNamespace();
    loopback = await startHostLoopbackServer("host-loopback");
  });
  after(async () => {
    await loopback?.stop();
    await outside?.teardown();
  });

  it("off has no interface but loopback and reaches nothing", async () => {
    const off = await create({ network_policy: "off" });
    const links = await ws.exec({ workspace: off.workspace_id, command: "ip -o link show | cut -d: -f2" });
    assert.deepEqual(links.stdout.split(/\s+/).filter(Boolean), ["lo"]);
    const probe = await ws.exec({ workspace: off.workspace_id, command: PROBE(outside.nsAddr, outside.server.port) });
    assert.match(probe.stdout, /^FAIL/);
    const local = await ws.exec({ workspace: off.workspace_id, command: PROBE("127.0.0.1", loopback.port) });
    assert.match(local.stdout, /^FAIL/);
  });

  it("egress reaches a server outside but not the host's loopback", async () => {
    const egress = await create({ network_policy: "egress" });
    const out = await ws.exec({ workspace: egress.workspace_id, command: PROBE(outside.nsAddr, outside.server.port) });
    assert.equal(out.stdout.trim(), `OK ${outside.greeting}`);
    for (const target of ["127.0.0.1", "10.0.2.2"]) {
      const probe = await ws.exec({ workspace: egress.workspace_id, command: PROBE(target, loopback.port) });
      assert.match(probe.stdout, /^FAIL/, `${target}: ${probe.stdout}`);
    }
  });
});

describe("every operation under every network policy", () => {
  // A sandbox with a network runs in a namespace of its own; diff, snapshots and reset pause it, and
  // once did so from outside that namespace, where runsc saw it as stopped.
  for (const policy of ["off", "egress", "egress+published-ports"] as const) {
    it(`${policy}: diff, summary, snapshot, reset, export, stop and start`, async () => {
      const { workspace_id: workspace } = await create({ network_policy: policy });
      await ws.exec({ workspace, command: "echo edited > note.txt" });
      const diff = await ws.diff({ workspace });
      assert.deepEqual(
        diff.files.map((f) => [f.path, f.status]),
        [["note.txt", "added"]],
      );
      assert.equal((await ws.summary({ workspace })).changes.total, 1);
      await ws.snapshotCreate({ workspace, snapshot_name: "edited" });
      await ws.reset({ workspace, snapshot: "baseline" });
      assert.equal((await ws.diff({ workspace })).files.length, 0);
      await ws.reset({ workspace, snapshot: "edited" });
      const out = join(host, `export-${policy}`);
      await ws.export({ workspace, path: "note.txt", output_path: out });
      assert.equal(readFileSync(out, "utf8"), "edited\n");
      await ws.stop({ workspace });
      await ws.start({ workspace });
      const read = await ws.exec({ workspace, command: "cat note.txt" });
      assert.equal(read.stdout, "edited\n");
    });
  }
});

describe("secrets", () => {
  const TOKEN = "tok-6f1d9a2b7c3e4d5f";
  const FILE_SECRET = "file-secret-0a9b8c7d6e";
  let id: string;
  before(async () => {
    const secretFile = join(host, "secret.txt");
    writeFileSync(secretFile, `${FILE_SECRET}\n`);
    id = (
      await create({
        name: "secrets",
        secrets: [
          { name: "TOKEN", value: TOKEN },
          { name: "FROM_FILE", file_path: secretFile },
        ],
      })
    ).workspace_id;
  });

  it("reaches the process through secret_env and is redacted from everything that comes back", async () => {
    const info = await ws.status({ workspace: id });
    assert.deepEqual(info.secrets, [
      { name: "TOKEN", source_kind: "literal" },
      { name: "FROM_FILE", source_kind: "file" },
    ]);
    const sha = (s: string) => createHash("sha256").update(s).digest("hex");
    const inside = await ws.exec({
      workspace: id,
      command: 'printf %s "$API_TOKEN" | sha256sum; printf %s "$FROM_FILE" | sha256sum; echo "token=$API_TOKEN"',
      secret_env: { TOKEN: "API_TOKEN", FROM_FILE: "FROM_FILE" },
    });
    const [tokenSum, fileSum, echoed] = inside.stdout.split("\n");
    assert.equal(tokenSum?.split(" ")[0], sha(TOKEN));
    assert.equal(fileSum?.split(" ")[0], sha(FILE_SECRET));
    assert.equal(echoed, "token=[REDACTED]");
    const unmapped = await ws.exec({ workspace: id, command: 'echo "[$API_TOKEN]"' });
    assert.equal(unmapped.stdout, "[]\n");
    await assert.rejects(
      ws.exec({ workspace: id, command: "true", secret_env: { NOPE: "X" } }),
      code("SECRET_NOT_FOUND"),
    );

    // A value split between two shell reads is still redacted.
    const shell = await shells.open({ workspace: id, secret_env: { TOKEN: "TOKEN" } });
    await shells.write({
      workspace: id,
      shell_id: shell.shell_id,
      // Shell parameter expansion, not a template: the first 8 characters, then the rest.
      // biome-ignore lint/suspicious/noTemplateCurlyInString: shell syntax
      input: 'printf "%s" "${TOKEN:0:8}"; sleep 1; printf "%s\\n" "${TOKEN:8}"',
    });
    const first = await shells.read({ workspace: id, shell_id: shell.shell_id, wait_for_idle_ms: 500 });
    const second = await shells.read({
      workspace: id,
      shell_id: shell.shell_id,
      cursor: first.next_cursor,
      wait_for_idle_ms: 700,
    });
    const seen = first.output + second.output;
    assert.ok(seen.includes("[REDACTED]"), JSON.stringify(seen));
    assert.ok(!seen.includes(TOKEN.slice(0, 8)) && !seen.includes(TOKEN.slice(8)), JSON.stringify(seen));
    // Reading from a cursor inside the secret shows none of it either.
    const all = await shells.read({ workspace: id, shell_id: shell.shell_id });
    const inner = all.output.indexOf("[REDACTED]");
    assert.ok(inner >= 0);
    const plain = await shells.read({ workspace: id, shell_id: shell.shell_id, plain: true });
    assert.ok(!plain.output.includes(TOKEN.slice(8)) && plain.output.includes("[REDACTED]"));

    // Service logs, errors and the CLI's JSON.
    const svc = await services.start({
      workspace: id,
      service_name: "leaky",
      command: 'echo "svc $T"; echo "err $T" >&2; sleep 100',
      secret_env: { TOKEN: "T" },
    });
    // Wait for both lines (bounded): a busy machine may take longer than a moment to run them.
    let logs = await services.logs({ workspace: id, service_name: svc.service_name });
    for (let waited = 0; waited < 10_000 && !(logs.stdout && logs.stderr); waited += 100) {
      await new Promise((r) => setTimeout(r, 100));
      logs = await services.logs({ workspace: id, service_name: svc.service_name });
    }
    assert.equal(logs.stdout, "svc [REDACTED]\n");
    assert.equal(logs.stderr, "err [REDACTED]\n");
    await assert.rejects(
      ws.exec({ workspace: id, command: "true", cwd: `/workspace/${TOKEN}` }),
      (e: PyroError) => !e.message.includes(TOKEN) && e.message.includes("[REDACTED]"),
    );
    const cli = await pyro([
      "workspace",
      "exec",
      "secrets",
      "--json",
      "--secret-env",
      "TOKEN",
      "--",
      "sh",
      "-c",
      'echo "$TOKEN"',
    ]);
    assert.equal(JSON.parse(cli.stdout).stdout, "[REDACTED]\n");
    const cliLogs = await pyro(["workspace", "logs", "secrets", "--json"]);
    const cliStatus = await pyro(["workspace", "status", "secrets", "--json"]);
    for (const text of [cli.stdout, cli.stderr, cliLogs.stdout, cliStatus.stdout]) {
      assert.ok(!text.includes(TOKEN) && !text.includes(FILE_SECRET));
    }
    await services.stop({ workspace: id, service_name: "leaky", grace_seconds: 0 });
    await shells.close({ workspace: id, shell_id: shell.shell_id });

    // File names and paths: a file named after the secret is redacted in list, diff, summary and errors.
    await ws.exec({ workspace: id, command: 'mkdir -p named && echo x > "named/$T.txt"', secret_env: { TOKEN: "T" } });
    const named = [
      await ws.listFiles({ workspace: id, path: "named" }),
      await ws.diff({ workspace: id }),
      await ws.summary({ workspace: id }),
    ];
    for (const result of named) {
      const text = JSON.stringify(result);
      assert.ok(!text.includes(TOKEN), text.slice(0, 400));
      assert.ok(text.includes("[REDACTED].txt"), text.slice(0, 400));
    }
    await assert.rejects(
      ws.readFile({ workspace: id, path: `named/${TOKEN}.missing` }),
      (e: PyroError) => !e.message.includes(TOKEN) && e.message.includes("[REDACTED]"),
    );

    // On disk only the secrets file holds the values, and only root may read it.
    const holders = filesContaining(stateDir, [TOKEN, FILE_SECRET]);
    const secretsFile = manager.lifecycle.records.paths(id).secrets;
    assert.deepEqual(holders, [secretsFile]);
    assert.equal(statSync(secretsFile).mode & 0o777, 0o600);
  });
});

/** Regular files under dir whose bytes contain any of the values. A running sandbox's root (a mount
 * of the environment plus its own layer, which is scanned) is skipped, and so is a workspace's disk
 * image: its files are scanned through its mount (sandbox/disk). */
function filesContaining(dir: string, values: string[]): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!(entry.name === "rootfs" && dir.endsWith("/sandbox"))) found.push(...filesContaining(path, values));
    } else if (entry.isFile() && entry.name !== "disk.img" && values.some((v) => readFileSync(path).includes(v))) {
      found.push(path);
    }
  }
  return found;
}
