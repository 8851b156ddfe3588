import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { LogBuffer, ServiceRegistry, tailLines } from "../../src/agent/services.js";
import { serveAgentOps } from "../../src/channel/agent-ops.js";
import { Channel } from "../../src/channel/channel.js";
import { Stream } from "../../src/channel/frame.js";
import { memoryDuplexPair } from "../../src/channel/memory.js";
import { type AgentServiceInfo, type AgentServiceStartParams, ServiceOp } from "../../src/channel/protocol.js";
import type { PyroError } from "../../src/contract/errors.js";

const registry = new ServiceRegistry();
const [a, b] = memoryDuplexPair();
new Channel(b, {
  role: "server",
  hello: { name: "agent", version: "t", capabilities: [] },
  handlers: serveAgentOps(registry.handlers()),
});
const client = new Channel(a, { role: "client", hello: { name: "host", version: "t", capabilities: [] } });
const tmp = mkdtempSync(join(tmpdir(), "pyro-test-services-"));
after(async () => {
  await registry.stopAll();
  client.close();
  rmSync(tmp, { recursive: true, force: true });
});

function start(p: Partial<AgentServiceStartParams> & Pick<AgentServiceStartParams, "name" | "argv">) {
  return client.request(ServiceOp.START, {
    cwd: tmp,
    ready_timeout_ms: 10_000,
    ready_interval_ms: 50,
    ...p,
  }) as Promise<AgentServiceInfo>;
}

const status = (name: string) => client.request(ServiceOp.STATUS, { name }) as Promise<AgentServiceInfo>;
const stop = (name: string, grace_ms = 2_000) =>
  client.request(ServiceOp.STOP, { name, grace_ms }) as Promise<AgentServiceInfo>;

async function logs(name: string, tail_lines?: number) {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const result = (await client.request(
    ServiceOp.LOGS,
    { name, tail_lines },
    { onData: (s, c) => (s === Stream.STDERR ? err : out).push(c) },
  )) as { service_name: string; truncated: boolean };
  return { ...result, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

/** Polls until check returns something truthy, failing after timeoutMs. */
async function eventually<T>(check: () => Promise<T>, timeoutMs = 3_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
}

function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

const isCode = (code: string) => (e: PyroError) => e.code === code;

describe("LogBuffer and tailLines", () => {
  it("keeps the newest bytes and remembers that older ones were dropped", () => {
    const buffer = new LogBuffer(10);
    buffer.append(Buffer.from("0123456"));
    assert.equal(buffer.truncated, false);
    buffer.append(Buffer.from("789abc"));
    assert.equal(buffer.contents().toString(), "3456789abc");
    assert.equal(buffer.truncated, true);
    buffer.append(Buffer.from("ABCDEFGHIJKLMNOP"));
    assert.equal(buffer.contents().toString(), "GHIJKLMNOP");
  });

  it("takes the last lines, a trailing newline not counting as another line", () => {
    const tail = (s: string, n: number) => {
      const r = tailLines(Buffer.from(s), n);
      return [r.data.toString(), r.cut];
    };
    assert.deepEqual(tail("a\nb\nc\n", 2), ["b\nc\n", true]);
    assert.deepEqual(tail("a\nb\nc", 2), ["b\nc", true]);
    assert.deepEqual(tail("a\nb\nc\n", 3), ["a\nb\nc\n", false]);
    assert.deepEqual(tail("a\nb\nc\n", 9), ["a\nb\nc\n", false]);
    assert.deepEqual(tail("\nx", 1), ["x", true]);
    assert.deepEqual(tail("\nx", 2), ["\nx", false]);
    assert.deepEqual(tail("", 1), ["", false]);
  });
});

describe("agent services", () => {
  it("becomes ready when an http probe answers, and keeps the server's log", async () => {
    const python = execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/`;
    const info = await start({
      name: "web",
      argv: [python, "-m", "http.server", String(port), "--bind", "127.0.0.1"],
      env: { PYTHONUNBUFFERED: "1" },
      readiness: { type: "http", url },
    });
    assert.equal(info.state, "ready", info.reason ?? "");
    assert.ok(info.ready_at);
    assert.equal(info.reason, null);
    const log = await eventually(async () => {
      const l = await logs("web");
      return /"GET \/ HTTP\/1\.1" 200/.test(l.stderr) ? l : undefined;
    });
    assert.ok(log, "request log line in stderr");
    const stopped = await stop("web");
    assert.equal(stopped.state, "stopped");
    assert.ok(stopped.ended_at);
    assert.equal(alive(info.pid!), false);
  });

  it("fails a service whose tcp port never opens, says why, and kills it", async () => {
    const port = await freePort();
    const t0 = Date.now();
    const info = await start({
      name: "no-listener",
      argv: ["sleep", "100"],
      readiness: { type: "tcp", host: "127.0.0.1", port },
      ready_timeout_ms: 1_500,
      ready_interval_ms: 100,
    });
    const elapsed = Date.now() - t0;
    assert.equal(info.state, "failed");
    assert.match(info.reason!, new RegExp(`not ready within 1.5 s: 127.0.0.1:${port}: connection refused`));
    assert.ok(elapsed >= 1_400 && elapsed < 2_500, `took ${elapsed} ms`);
    assert.equal(alive(info.pid!), false, "process killed");
    assert.ok(info.ended_at);
  });

  it("waits for a file to appear, relative to the service's cwd", async () => {
    const info = await start({
      name: "file-ready",
      argv: ["sh", "-c", "sleep 0.3; touch ready; sleep 100"],
      readiness: { type: "file", path: "ready" },
    });
    assert.equal(info.state, "ready");
    assert.ok(Date.parse(info.ready_at!) - Date.parse(info.started_at) >= 250);
    assert.equal((await stop("file-ready")).state, "stopped");
  });

  it("waits for a readiness command to succeed, run in the service's cwd and env", async () => {
    const info = await start({
      name: "command-ready",
      argv: ["sh", "-c", 'sleep 0.3; echo "$MARK" > marker; sleep 100'],
      env: { MARK: "up" },
      readiness: { type: "command", command: 'grep -qx "$MARK" marker' },
    });
    assert.equal(info.state, "ready");
    assert.equal((await stop("command-ready")).state, "stopped");
  });

  it("reports a service that exits on its own after running or ready as exited, with its code", async () => {
    const running = await start({ name: "quits", argv: ["sh", "-c", "sleep 0.2; exit 3"] });
    assert.equal(running.state, "running");
    assert.equal(running.ready_at, null);
    const ready = await start({
      name: "quits-ready",
      argv: ["sh", "-c", "sleep 0.3; exit 3"],
      readiness: { type: "command", command: ["true"] },
    });
    assert.equal(ready.state, "ready");
    for (const name of ["quits", "quits-ready"]) {
      const ended = await eventually(async () => {
        const s = await status(name);
        return s.state === "exited" ? s : undefined;
      });
      assert.ok(ended, `${name} exited`);
      assert.equal(ended.exit_code, 3);
      assert.ok(ended.ended_at);
      assert.equal(ended.reason, null);
    }
  });

  it("reports a signal death as 128+N", async () => {
    await start({ name: "killed", argv: ["sh", "-c", "sleep 0.1; kill -USR1 $$"] });
    const ended = await eventually(async () => {
      const s = await status("killed");
      return s.state === "exited" ? s : undefined;
    });
    assert.equal(ended?.exit_code, 138);
  });

  it("fails a service that exits before it is ready, keeping its output", async () => {
    const info = await start({
      name: "early-exit",
      argv: ["sh", "-c", "echo boom >&2; exit 2"],
      readiness: { type: "file", path: "never" },
    });
    assert.equal(info.state, "failed");
    assert.equal(info.reason, "exited with code 2 before it was ready");
    assert.equal(info.exit_code, 2);
    assert.equal((await logs("early-exit")).stderr, "boom\n");
  });

  it("fails a command that does not exist", async () => {
    const info = await start({ name: "missing", argv: ["no-such-command-xyz"] });
    assert.equal(info.state, "failed");
    assert.equal(info.reason, "no-such-command-xyz: command not found");
    assert.equal(info.pid, null);
  });

  it("refuses a second service of a live name, and replaces an ended one", async () => {
    const first = await start({ name: "dup", argv: ["sleep", "100"] });
    await assert.rejects(
      start({ name: "dup", argv: ["sleep", "100"] }),
      (e: PyroError) => e.code === "SERVICE_EXISTS" && /stop it first or pick another name/.test(e.message),
    );
    await stop("dup");
    const second = await start({ name: "dup", argv: ["sleep", "100"] });
    assert.equal(second.state, "running");
    assert.notEqual(second.pid, first.pid);
    await stop("dup");
  });

  it("KILLs a service that ignores TERM once the grace is up", async () => {
    const info = await start({
      name: "stubborn",
      argv: ["sh", "-c", "trap '' TERM; touch trapped; sleep 100"],
      readiness: { type: "file", path: "trapped" },
    });
    const t0 = Date.now();
    const stopped = await stop("stubborn", 300);
    const elapsed = Date.now() - t0;
    assert.equal(stopped.state, "stopped");
    assert.equal(stopped.exit_code, 137);
    assert.ok(elapsed >= 250 && elapsed < 1_000, `took ${elapsed} ms`);
    assert.equal(alive(info.pid!), false);
    // Stopping again just reports it.
    assert.deepEqual(await stop("stubborn"), stopped);
  });

  it("stop also kills what the service started, even when the service itself went on TERM", async () => {
    await start({
      name: "parent",
      argv: ["sh", "-c", "sh -c 'trap \"\" TERM; echo $$ > bg.pid; exec sleep 100' & sleep 100"],
      readiness: { type: "command", command: "test -s bg.pid" },
    });
    const bg = Number(readFileSync(join(tmp, "bg.pid"), "utf8"));
    assert.ok(alive(bg));
    const stopped = await stop("parent", 300);
    assert.equal(stopped.state, "stopped");
    assert.equal(stopped.exit_code, 143);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(alive(bg), false, "background child killed");
  });

  it("returns the last lines of each stream", async () => {
    await start({
      name: "chatty",
      argv: ["sh", "-c", "printf 'a\\nb\\nc\\n'; printf 'x\\ny\\n' >&2; touch said; sleep 100"],
      readiness: { type: "file", path: "said" },
    });
    const tail = await logs("chatty", 2);
    assert.deepEqual(tail, { service_name: "chatty", truncated: true, stdout: "b\nc\n", stderr: "x\ny\n" });
    const all = await logs("chatty");
    assert.deepEqual(all, { service_name: "chatty", truncated: false, stdout: "a\nb\nc\n", stderr: "x\ny\n" });
    await stop("chatty");
  });

  it("lists services in start order", async () => {
    for (const name of ["list-c", "list-a", "list-b"]) await start({ name, argv: ["sleep", "100"] });
    const { services } = (await client.request(ServiceOp.LIST, {})) as { services: AgentServiceInfo[] };
    const names = services.map((s) => s.service_name).filter((n) => n.startsWith("list-"));
    assert.deepEqual(names, ["list-c", "list-a", "list-b"]);
    for (const name of names) await stop(name);
  });

  it("marks a start cancelled by the caller as failed and kills the process", async () => {
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 200);
    await assert.rejects(
      client.request(
        ServiceOp.START,
        {
          name: "cancelled",
          argv: ["sleep", "100"],
          cwd: tmp,
          readiness: { type: "file", path: "never" },
          ready_timeout_ms: 10_000,
          ready_interval_ms: 50,
        },
        { signal: abort.signal },
      ),
    );
    const ended = await eventually(async () => {
      const s = await status("cancelled");
      return s.state === "failed" ? s : undefined;
    });
    assert.equal(ended?.reason, "cancelled");
    assert.equal(alive(ended!.pid!), false);
  });

  it("answers SERVICE_NOT_FOUND for a name it does not know", async () => {
    await assert.rejects(status("nope"), isCode("SERVICE_NOT_FOUND"));
    await assert.rejects(logs("nope"), isCode("SERVICE_NOT_FOUND"));
    await assert.rejects(stop("nope"), isCode("SERVICE_NOT_FOUND"));
  });

  it("refuses bad parameters, naming the field", async () => {
    await assert.rejects(
      start({ name: "bad name", argv: ["true"] }),
      (e: PyroError) => e.code === "INVALID_ARGUMENT" && /name:/.test(e.message),
    );
    await assert.rejects(
      start({ name: "nowhere", argv: ["true"], cwd: "/nonexistent-dir" }),
      (e: PyroError) => e.code === "INVALID_ARGUMENT" && /nonexistent-dir/.test(e.message),
    );
    await assert.rejects(
      start({ name: "ftp", argv: ["true"], readiness: { type: "http", url: "ftp://127.0.0.1/" } }),
      (e: PyroError) => e.code === "INVALID_ARGUMENT" && /readiness\.url/.test(e.message),
    );
  });

  it("leaves nothing running after stopAll", async () => {
    const info = await start({ name: "leftover", argv: ["sleep", "100"] });
    await registry.stopAll();
    assert.equal((await status("leftover")).state, "stopped");
    assert.equal(alive(info.pid!), false);
  });
});
