import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { execCancelHandler, execHandler } from "../../src/agent/exec.js";
import { SPAWNER } from "../../src/agent/spawner.js";
import { serveAgentOps } from "../../src/channel/agent-ops.js";
import { Channel } from "../../src/channel/channel.js";
import { Stream } from "../../src/channel/frame.js";
import { memoryDuplexPair } from "../../src/channel/memory.js";
import type { AgentExecParams, AgentExecResult } from "../../src/channel/protocol.js";
import type { PyroError } from "../../src/contract/errors.js";

const [a, b] = memoryDuplexPair();
new Channel(b, {
  role: "server",
  hello: { name: "agent", version: "t", capabilities: [] },
  handlers: serveAgentOps({ exec: execHandler, "exec.cancel": execCancelHandler }),
});
const client = new Channel(a, { role: "client", hello: { name: "host", version: "t", capabilities: [] } });
const tmp = mkdtempSync(join(tmpdir(), "pyro-test-exec-"));
after(() => {
  client.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function exec(
  p: Partial<AgentExecParams> & { argv: string[] },
  opts: { onData?: (stream: number, chunk: Buffer) => void; signal?: AbortSignal } = {},
) {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const result = (await client.request(
    "exec",
    { cwd: tmp, timeout_ms: 10_000, max_output_bytes: 1 << 20, ...p },
    {
      signal: opts.signal,
      onData: (s, c) => {
        (s === Stream.STDERR ? err : out).push(c);
        opts.onData?.(s, c);
      },
    },
  )) as AgentExecResult;
  return { ...result, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

/** Live processes whose command line holds `word` (a sleep with a duration no other test uses). */
function running(word: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/stat`, "utf8").includes(") Z ")) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").includes(word)) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

/** Resolves once the first output chunk arrives (the command has set itself up). */
function firstOutput(): { onData: () => void; arrived: Promise<void> } {
  let onData = () => {};
  const arrived = new Promise<void>((resolve) => {
    onData = resolve;
  });
  return { onData, arrived };
}

describe("agent exec", () => {
  it("spawns through posix_spawn, not fork (fork of the agent is the slow path under gVisor)", () => {
    assert.equal(SPAWNER, "posix_spawn");
  });

  it("keeps stdout and stderr apart and returns the exit code", async () => {
    const r = await exec({ argv: ["sh", "-c", "echo out; echo err >&2; exit 3"] });
    assert.equal(r.stdout, "out\n");
    assert.equal(r.stderr, "err\n");
    assert.equal(r.exit_code, 3);
    assert.equal(r.timed_out, false);
  });

  it("runs in cwd with the given environment", async () => {
    const r = await exec({ argv: ["sh", "-c", 'pwd; echo "$GREETING"'], env: { GREETING: "hi" } });
    assert.equal(r.stdout, `${tmp}\nhi\n`);
  });

  it("kills the whole process group on timeout", async () => {
    const pidfile = join(tmp, "bg.pid");
    const t0 = Date.now();
    const r = await exec({ argv: ["sh", "-c", `sleep 100 & echo $! > ${pidfile}; sleep 100`], timeout_ms: 300 });
    assert.equal(r.timed_out, true);
    assert.equal(r.exit_code, 124);
    assert.ok(Date.now() - t0 < 3000);
    const bg = Number(readFileSync(pidfile, "utf8"));
    await new Promise((res) => setTimeout(res, 100));
    assert.equal(
      existsSync(`/proc/${bg}`) && !readFileSync(`/proc/${bg}/stat`, "utf8").includes(") Z "),
      false,
      "background child killed",
    );
  });

  it("streams output as the command prints it, long before it exits", async () => {
    const seen: Array<{ at: number; text: string }> = [];
    const t0 = Date.now();
    const r = await exec(
      { argv: ["sh", "-c", "echo first; sleep 1.5; echo second >&2"] },
      { onData: (_s, c) => seen.push({ at: Date.now() - t0, text: c.toString() }) },
    );
    const ended = Date.now() - t0;
    assert.equal(r.exit_code, 0);
    assert.equal(seen[0]?.text, "first\n");
    assert.ok(ended - seen[0]!.at >= 1000, `first chunk at ${seen[0]?.at} ms, result at ${ended} ms`);
    assert.equal(r.stderr, "second\n");
  });

  it("on timeout kills a grandchild that made a session of its own (setsid), before answering", async () => {
    const r = await exec({ argv: ["sh", "-c", "setsid sh -c 'sleep 4711.25' & sleep 4711.5"], timeout_ms: 500 });
    assert.equal(r.timed_out, true);
    assert.equal(r.exit_code, 124);
    assert.deepEqual(running("4711.25"), [], "the setsid grandchild is gone when exec answers");
    assert.deepEqual(running("4711.5"), []);
  });

  it("on exec.cancel kills the tree, orphans adopted by init included, and answers cancelled", async () => {
    const ready = firstOutput();
    const pending = exec(
      {
        argv: ["sh", "-c", "(setsid sh -c 'sleep 4712.25' &); setsid sh -c 'sleep 4712.5' & echo ready; sleep 4712.75"],
        exec_id: "cancel-me",
      },
      { onData: ready.onData },
    );
    await ready.arrived;
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(running("4712.25").length, 1, "the orphan runs before the cancel");
    assert.deepEqual(await client.request("exec.cancel", { exec_id: "cancel-me" }), { found: true });
    const r = await pending;
    assert.equal(r.cancelled, true);
    assert.equal(r.timed_out, false);
    assert.equal(r.exit_code, 137);
    assert.equal(r.stdout, "ready\n");
    for (const word of ["4712.25", "4712.5", "4712.75"]) assert.deepEqual(running(word), [], word);
    assert.deepEqual(await client.request("exec.cancel", { exec_id: "cancel-me" }), { found: false });
  });

  it("kills the tree when the request itself is cancelled (the caller went away)", async () => {
    const ready = firstOutput();
    const abort = new AbortController();
    const pending = exec(
      { argv: ["sh", "-c", "setsid sh -c 'sleep 4713.25' & echo ready; sleep 4713.5"] },
      { onData: ready.onData, signal: abort.signal },
    );
    await ready.arrived;
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(running("4713.25").length, 1, "the setsid grandchild runs before the cancel");
    abort.abort();
    await assert.rejects(pending, (e: PyroError) => e.code === "CANCELLED");
    const deadline = Date.now() + 3000;
    while (running("4713.25").length + running("4713.5").length > 0 && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.deepEqual([...running("4713.25"), ...running("4713.5")], []);
  });

  it("caps output and says so", async () => {
    const r = await exec({
      argv: ["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x; echo tail >&2"],
      max_output_bytes: 1000,
    });
    assert.equal(r.stdout.length, 1000);
    assert.equal(r.stdout_truncated, true);
    assert.equal(r.stderr, "tail\n");
    assert.equal(r.stderr_truncated, false);
  });

  it("reports a missing command as exit 127 with a message", async () => {
    const r = await exec({ argv: ["no-such-command-xyz"] });
    assert.equal(r.exit_code, 127);
    assert.match(r.stderr, /no-such-command-xyz: command not found/);
  });

  it("reports a signal death as 128+N", async () => {
    const r = await exec({ argv: ["sh", "-c", "kill -TERM $$"] });
    assert.equal(r.exit_code, 143);
    assert.equal(r.signal, "SIGTERM");
  });

  it("refuses a working directory that does not exist", async () => {
    await assert.rejects(
      exec({ argv: ["true"], cwd: "/nonexistent-dir" }),
      (e: PyroError) => e.code === "INVALID_ARGUMENT" && /nonexistent-dir/.test(e.message),
    );
  });

  it("does not hang when a background child keeps the pipes open", async () => {
    const t0 = Date.now();
    const r = await exec({ argv: ["sh", "-c", "sleep 5 & echo started"] });
    assert.equal(r.stdout, "started\n");
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
  });
});
