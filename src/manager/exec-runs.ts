// Owns the workspace commands this process has running or has just finished: each one's output as
// it arrives (decoded, redacted, already capped by the agent), its outcome, waiting on it up to a
// deadline, and cancelling it so that the agent kills its whole tree and says how it ended.
// A command belongs to the process that started it (an MCP server, an SDK user, one CLI run): its
// output lives here, and if this process goes away its supervisor connection closes and the agent
// kills the command.

import { randomUUID } from "node:crypto";
import { StringDecoder } from "node:string_decoder";
import { callAgent, type Requester } from "../channel/agent-ops.js";
import { Stream } from "../channel/frame.js";
import { type AgentExecParams, AgentOp, EXEC_ANSWER_GRACE_MS } from "../channel/protocol.js";
import type { EngineName } from "../contract/schemas.js";
import type { WorkspaceExecResult } from "../contract/workspace.js";
import type { Redactor } from "./redact.js";

export type OutputStream = "stdout" | "stderr";
/** Told each piece of a command's output as it arrives, redacted. */
export type OutputListener = (stream: OutputStream, text: string) => void;

/** A finished command's output stays readable this long, for a workspace_exec_wait still to come. */
export const FINISHED_RETAIN_MS = 10 * 60_000;
/** ... and at most this many finished commands are kept (each holds up to 2 × 1 MiB of output). */
export const FINISHED_RETAIN_COUNT = 16;
/** After asking the agent to cancel, how long to wait for its answer before giving up on it. */
const CANCEL_WAIT_MS = 15_000;
/** Grace past the command's own timeout for the agent's answer (the kill and the drain). */

function delay(ms: number): { done: Promise<void>; clear: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return { done, clear: () => clearTimeout(timer) };
}

/**
 * One stream's text so far. Bytes are decoded without splitting a character, and secrets are
 * redacted across piece boundaries: an end that may begin a secret is held back until the next
 * piece shows whether it does (or, at the end, dropped if the output was cut there).
 */
export class StreamText {
  private readonly decoder = new StringDecoder("utf8");
  /** Raw text already shown, its last characters only: a secret may span from it into a piece. */
  private before = "";
  /** Raw text held back because it may be the start of a secret. */
  private held = "";
  text = "";
  bytes = 0;

  constructor(private readonly redactor: Redactor) {}

  /** Adds a chunk; returns the text that became visible. */
  push(chunk: Buffer): string {
    this.bytes += chunk.length;
    return this.add(this.decoder.write(chunk), true);
  }

  /** Ends the stream; `truncated` output may end in part of a secret, which is dropped. */
  end(truncated: boolean): string {
    const visible = this.add(this.decoder.end(), truncated);
    this.held = "";
    return visible;
  }

  private add(decoded: string, holdBack: boolean): string {
    const piece = this.held + decoded;
    if (piece === "") return "";
    if (this.redactor.empty) {
      this.held = "";
      this.text += piece;
      return piece;
    }
    const { text, held } = this.redactor.redactPiece(this.before, piece, { holdBack });
    this.before = (this.before + piece.slice(0, piece.length - held)).slice(-this.redactor.lookbehindBytes);
    this.held = piece.slice(piece.length - held);
    this.text += text;
    return text;
  }
}

interface RunOutcome {
  exit_code: number;
  timed_out: boolean;
  cancelled: boolean;
  duration_ms: number;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
}

export interface ExecRunSpec {
  /** The workspace's supervisor client (anything that relays requests to the agent). */
  client: Requester;
  workspaceId: string;
  sequence: number;
  cwd: string;
  executionMode: EngineName;
  redactor: Redactor;
  agent: Omit<AgentExecParams, "exec_id">;
  /** Writes the command's log entry once the outcome is known, before anyone hears of it. */
  record: (run: ExecRun) => Promise<void>;
  /** Called every keepAliveMs while the command runs (a running command is activity: no TTL stop). */
  keepAlive?: { everyMs: number; touch: () => Promise<void> };
}

export class ExecRun {
  readonly workspaceId: string;
  readonly sequence: number;
  readonly cwd: string;
  readonly startedAt = new Date();
  readonly stdout: StreamText;
  readonly stderr: StreamText;
  /** Known once the agent answered (or the request failed); final once `settled`. */
  outcome: RunOutcome | undefined;
  /** Why the request failed, when that was not a cancel (the sandbox stopped under it, a refusal). */
  error: unknown;
  settled = false;
  /** Settles once the outcome is known and logged. */
  readonly ended: Promise<void>;
  endedAt: number | undefined;
  private resolveEnded!: () => void;
  private cancelRequested = false;
  private readonly execId = randomUUID();
  private readonly abort = new AbortController();
  private readonly listeners = new Set<OutputListener>();
  /** Where the last reply ended: the default offsets of the next. */
  private delivered = { stdout: 0, stderr: 0 };

  constructor(private readonly spec: ExecRunSpec) {
    this.workspaceId = spec.workspaceId;
    this.sequence = spec.sequence;
    this.cwd = spec.cwd;
    this.stdout = new StreamText(spec.redactor);
    this.stderr = new StreamText(spec.redactor);
    this.ended = new Promise((resolve) => {
      this.resolveEnded = resolve;
    });
    const keepAlive = spec.keepAlive
      ? setInterval(() => void spec.keepAlive?.touch().catch(() => {}), spec.keepAlive.everyMs)
      : undefined;
    keepAlive?.unref();
    callAgent(
      spec.client,
      AgentOp.EXEC,
      { ...spec.agent, exec_id: this.execId },
      {
        deadlineMs: spec.agent.timeout_ms + EXEC_ANSWER_GRACE_MS,
        signal: this.abort.signal,
        onData: (stream, chunk) => this.data(stream === Stream.STDERR ? "stderr" : "stdout", chunk),
      },
    )
      .then(
        (result) => {
          this.finish({
            exit_code: result.exit_code,
            timed_out: result.timed_out,
            cancelled: result.cancelled ?? (this.cancelRequested && !result.timed_out),
            duration_ms: result.duration_ms,
            stdout_truncated: result.stdout_truncated,
            stderr_truncated: result.stderr_truncated,
          });
        },
        (err: unknown) => {
          // Cut off (a cancel an old agent could only take as a cancelled request, the workspace
          // stopping, a lost sandbox): the agent kills the tree when its request goes away.
          this.finish(
            {
              exit_code: 137,
              timed_out: false,
              cancelled: true,
              duration_ms: Date.now() - this.startedAt.getTime(),
              stdout_truncated: this.stdout.bytes >= spec.agent.max_output_bytes,
              stderr_truncated: this.stderr.bytes >= spec.agent.max_output_bytes,
            },
            this.cancelRequested ? undefined : err,
          );
        },
      )
      .then(() => spec.record(this))
      .catch(() => {})
      .finally(() => {
        clearInterval(keepAlive);
        this.settled = true;
        this.endedAt = Date.now();
        this.resolveEnded();
      });
  }

  get running(): boolean {
    return !this.settled;
  }

  /** Hears every piece of output from now on, until the returned function is called. */
  listen(listener: OutputListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Asks the agent to kill the command's tree and waits, bounded, for its answer (which is then
   * the outcome: exit 137, cancelled, the output up to the kill). An agent that predates
   * exec.cancel gets its request cancelled instead, which kills the tree all the same.
   */
  async cancel(): Promise<void> {
    if (this.settled) return;
    this.cancelRequested = true;
    const asked = await callAgent(
      this.spec.client,
      AgentOp.EXEC_CANCEL,
      { exec_id: this.execId },
      { deadlineMs: 5_000 },
    )
      .then(() => true)
      .catch(() => false);
    if (!asked) this.abort.abort();
    const wait = delay(CANCEL_WAIT_MS);
    await Promise.race([this.ended, wait.done]);
    wait.clear();
    if (!this.settled) {
      this.abort.abort();
      await this.ended;
    }
  }

  /** The reply to a caller: output from the given offsets (default: where the last reply ended). */
  reply(offsets: { stdout?: number; stderr?: number } = {}): WorkspaceExecResult {
    const out = this.stdout.text;
    const err = this.stderr.text;
    const from = (offset: number | undefined, fallback: number, length: number) => Math.min(offset ?? fallback, length);
    const stdoutFrom = from(offsets.stdout, this.delivered.stdout, out.length);
    const stderrFrom = from(offsets.stderr, this.delivered.stderr, err.length);
    this.delivered = { stdout: out.length, stderr: err.length };
    const done = this.settled ? this.outcome : undefined;
    const cap = this.spec.agent.max_output_bytes;
    return {
      workspace_id: this.workspaceId,
      sequence: this.sequence,
      cwd: this.cwd,
      stdout: out.slice(stdoutFrom),
      stderr: err.slice(stderrFrom),
      exit_code: done?.exit_code ?? null,
      duration_ms: done?.duration_ms ?? Date.now() - this.startedAt.getTime(),
      timed_out: done?.timed_out ?? false,
      cancelled: done?.cancelled ?? false,
      running: !this.settled,
      stdout_truncated: done?.stdout_truncated ?? this.stdout.bytes >= cap,
      stderr_truncated: done?.stderr_truncated ?? this.stderr.bytes >= cap,
      execution_mode: this.spec.executionMode,
      next_stdout_offset: out.length,
      next_stderr_offset: err.length,
    };
  }

  private data(stream: OutputStream, chunk: Buffer): void {
    const text = (stream === "stderr" ? this.stderr : this.stdout).push(chunk);
    if (text) this.tell(stream, text);
  }

  private finish(outcome: RunOutcome, error?: unknown): void {
    if (this.outcome) return;
    this.outcome = outcome;
    this.error = error;
    const out = this.stdout.end(outcome.stdout_truncated);
    if (out) this.tell("stdout", out);
    const err = this.stderr.end(outcome.stderr_truncated);
    if (err) this.tell("stderr", err);
  }

  private tell(stream: OutputStream, text: string): void {
    for (const listener of this.listeners) {
      try {
        listener(stream, text);
      } catch {}
    }
  }
}

export interface WaitOptions {
  /** Return a running command's progress after this long; omitted: wait until it ends. */
  waitMs?: number;
  signal?: AbortSignal;
  /** Whether an aborted signal cancels the command (the call that started it) or only the wait. */
  cancelOnAbort: boolean;
  onOutput?: OutputListener;
  offsets?: { stdout?: number; stderr?: number };
}

/**
 * Waits for the command to end, for `waitMs`, or for the signal, whichever comes first, telling
 * `onOutput` what it prints meanwhile; the command's own timeout bounds the wait when nothing else
 * does. A request that failed for a reason other than a cancel rethrows that failure.
 */
export async function waitForRun(run: ExecRun, opts: WaitOptions): Promise<WorkspaceExecResult> {
  const stopListening = opts.onOutput ? run.listen(opts.onOutput) : undefined;
  const wait = opts.waitMs === undefined ? undefined : delay(opts.waitMs);
  let onAbort = () => {};
  const aborted = new Promise<void>((resolve) => {
    onAbort = resolve;
    if (opts.signal?.aborted) resolve();
    else opts.signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    await Promise.race([run.ended, ...(wait ? [wait.done] : []), ...(opts.signal ? [aborted] : [])]);
    if (opts.signal?.aborted && opts.cancelOnAbort) await run.cancel();
    if (run.settled && run.error !== undefined) throw run.error;
    return run.reply(opts.offsets);
  } finally {
    wait?.clear();
    opts.signal?.removeEventListener("abort", onAbort);
    stopListening?.();
  }
}

/** The runs of one WorkspaceService, by workspace and sequence. */
export class ExecRuns {
  private readonly runs = new Map<string, ExecRun>();

  start(spec: ExecRunSpec): ExecRun {
    const run = new ExecRun(spec);
    const key = `${spec.workspaceId}#${spec.sequence}`;
    this.runs.set(key, run);
    void run.ended.then(() => {
      setTimeout(() => {
        if (this.runs.get(key) === run) this.runs.delete(key);
      }, FINISHED_RETAIN_MS).unref();
      const finished = [...this.runs.entries()].filter(([, r]) => r.settled);
      finished.sort((a, b) => (a[1].endedAt ?? 0) - (b[1].endedAt ?? 0));
      for (const [old] of finished.slice(0, Math.max(0, finished.length - FINISHED_RETAIN_COUNT))) {
        this.runs.delete(old);
      }
    });
    return run;
  }

  get(workspaceId: string, sequence: number): ExecRun | undefined {
    return this.runs.get(`${workspaceId}#${sequence}`);
  }

  /** Sequences of the workspace's commands that are still running here. */
  running(workspaceId: string): number[] {
    return [...this.runs.values()]
      .filter((r) => r.workspaceId === workspaceId && r.running)
      .map((r) => r.sequence)
      .sort((a, b) => a - b);
  }

  /** Cancels every running command (the process is closing its runtime) and waits for their logs. */
  async cancelAll(): Promise<void> {
    await Promise.allSettled([...this.runs.values()].filter((r) => r.running).map((r) => r.cancel()));
  }
}
