// The host side of a workspace command (src/manager/exec-runs.ts) against the real agent exec over
// the in-memory channel: output redacted as it streams, a wait that returns a running command and
// a later one that collects the rest, and cancels that kill the tree and are logged as cancelled.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { execCancelHandler, execHandler } from "../../src/agent/exec.js";
import { serveAgentOps } from "../../src/channel/agent-ops.js";
import { Channel } from "../../src/channel/channel.js";
import { memoryDuplexPair } from "../../src/channel/memory.js";
import { ExecRun, StreamText, waitForRun } from "../../src/manager/exec-runs.js";
import { NO_SECRETS, Redactor } from "../../src/manager/redact.js";
import type { SupervisorClient } from "../../src/supervisor/client.js";

const [a, b] = memoryDuplexPair();
new Channel(b, {
  role: "server",
  hello: { name: "agent", version: "t", capabilities: [] },
  handlers: serveAgentOps({ exec: execHandler, "exec.cancel": execCancelHandler }),
});
const channel = new Channel(a, { role: "client", hello: { name: "host", version: "t", capabilities: [] } });
const client = { request: channel.request.bind(channel) } as unknown as SupervisorClient;
const tmp = mkdtempSync(join(tmpdir(), "pyro-test-runs-"));
after(() => {
  channel.close();
  rmSync(tmp, { recursive: true, force: true });
});

function start(script: string, opts: { timeoutMs?: number; redactor?: Redactor } = {}) {
  const logged: Array<{ exit_code: number; cancelled: boolean; timed_out: boolean; stdout: string }> = [];
  const run = new ExecRun({
    client,
    workspaceId: "ws-test",
    sequence: 7,
    cwd: tmp,
    executionMode: "gvisor",
    redactor: opts.redactor ?? NO_SECRETS,
    agent: {
      argv: ["sh", "-c", script],
      cwd: tmp,
      env: {},
      timeout_ms: opts.timeoutMs ?? 10_000,
      max_output_bytes: 1 << 20,
    },
    record: async (r) => {
      assert.ok(r.outcome, "the outcome is known when the entry is written");
      logged.push({ ...r.outcome, stdout: r.stdout.text });
    },
  });
  return { run, logged };
}

describe("workspace command runs (host side)", () => {
  it("redacts a secret split across chunks, and never splits a character", () => {
    const text = new StreamText(new Redactor(["hunter2"]));
    const shown = [
      text.push(Buffer.from("pass=hun")),
      text.push(Buffer.from("ter2 ok ")),
      text.push(Buffer.from([0xc3])),
    ];
    shown.push(text.push(Buffer.from([0xa9, 0x0a])), text.end(false));
    assert.equal(shown[0], "pass=", "a possible start of the secret is held back");
    assert.equal(text.text, "pass=[REDACTED] ok é\n");
    assert.equal(shown.join(""), text.text);
  });

  it("returns a command still running after the wait, then the rest and its outcome", async () => {
    const { run, logged } = start("echo one; sleep 1; echo two; echo err >&2; exit 3");
    const heard: string[] = [];
    const first = await waitForRun(run, { waitMs: 400, cancelOnAbort: true, onOutput: (_s, t) => heard.push(t) });
    assert.equal(first.running, true);
    assert.equal(first.exit_code, null);
    assert.equal(first.stdout, "one\n");
    assert.equal(first.next_stdout_offset, 4);
    assert.deepEqual(heard, ["one\n"]);
    assert.deepEqual(logged, [], "not logged while it runs");

    const rest = await waitForRun(run, { waitMs: 5_000, cancelOnAbort: false });
    assert.equal(rest.running, false);
    assert.equal(rest.exit_code, 3);
    assert.equal(rest.stdout, "two\n", "only what came after the previous reply");
    assert.equal(rest.stderr, "err\n");
    assert.equal(logged.length, 1, "logged before the final reply");
    const again = await waitForRun(run, { waitMs: 0, cancelOnAbort: false, offsets: { stdout: 0 } });
    assert.equal(again.stdout, "one\ntwo\n", "offsets read again from any point");
  });

  it("cancels on the starting call's abort: the tree is killed and the log says cancelled", async () => {
    const { run, logged } = start("setsid sh -c 'sleep 4721.5' & echo started; sleep 4721.25");
    const abort = new AbortController();
    const result = waitForRun(run, {
      cancelOnAbort: true,
      signal: abort.signal,
      onOutput: () => setTimeout(() => abort.abort(), 200),
    });
    const r = await result;
    assert.equal(r.running, false);
    assert.equal(r.cancelled, true);
    assert.equal(r.exit_code, 137);
    assert.equal(r.stdout, "started\n");
    assert.deepEqual(logged, [
      {
        exit_code: 137,
        cancelled: true,
        timed_out: false,
        duration_ms: r.duration_ms,
        stdout_truncated: false,
        stderr_truncated: false,
        stdout: "started\n",
      },
    ]);
  });

  it("only stops waiting when a later wait is aborted; the command goes on", async () => {
    const { run } = start("sleep 0.8; echo done");
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 100);
    const cut = await waitForRun(run, { signal: abort.signal, cancelOnAbort: false });
    assert.equal(cut.running, true);
    const end = await waitForRun(run, { waitMs: 5_000, cancelOnAbort: false });
    assert.equal(end.exit_code, 0);
    assert.equal(end.stdout, "done\n");
  });

  it("reports a timeout with exit 124, logged as timed out", async () => {
    const { run, logged } = start("echo a; sleep 30", { timeoutMs: 300 });
    const r = await waitForRun(run, { cancelOnAbort: true });
    assert.equal(r.timed_out, true);
    assert.equal(r.exit_code, 124);
    assert.equal(r.cancelled, false);
    assert.equal(logged[0]?.timed_out, true);
  });
});
