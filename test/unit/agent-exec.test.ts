import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { execHandler } from "../../src/agent/exec.js";
import { SPAWNER } from "../../src/agent/spawner.js";
import { Channel } from "../../src/channel/channel.js";
import { Stream } from "../../src/channel/frame.js";
import { memoryDuplexPair } from "../../src/channel/memory.js";
import type { AgentExecParams, AgentExecResult } from "../../src/channel/protocol.js";
import type { PyroError } from "../../src/contract/errors.js";

const [a, b] = memoryDuplexPair();
new Channel(b, {
  role: "server",
  hello: { name: "agent", version: "t", capabilities: [] },
  handlers: { exec: execHandler },
});
const client = new Channel(a, { role: "client", hello: { name: "host", version: "t", capabilities: [] } });
const tmp = mkdtempSync(join(tmpdir(), "pyro-test-exec-"));
after(() => {
  client.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function exec(p: Partial<AgentExecParams> & { argv: string[] }) {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const result = (await client.request(
    "exec",
    { cwd: tmp, timeout_ms: 10_000, max_output_bytes: 1 << 20, ...p },
    { onData: (s, c) => (s === Stream.STDERR ? err : out).push(c) },
  )) as AgentExecResult;
  return { ...result, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
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
