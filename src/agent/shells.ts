// Owns PTY shells inside the sandbox: each shell runs on a pseudo-terminal in a session of its own,
// its output goes into an append-only buffer (the last 1 MiB kept, addressed by absolute byte
// offsets) read by cursor, and input, signals and close go to the terminal's processes. A shell
// lives as long as the agent, not as long as the request that opened it.

import { randomBytes } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { ReadStream } from "node:tty";
import type { z } from "zod";
import type { AgentHandlers } from "../channel/agent-ops.js";
import type { HandlerContext } from "../channel/channel.js";
import { DATA_CHUNK_BYTES, Stream } from "../channel/frame.js";
import { signalExitCode } from "../channel/output.js";
import {
  type AgentShellInfo,
  type AgentShellOpenParams,
  type AgentShellReadParams,
  type AgentShellReadResult,
  type AgentShellSignalParams,
  type AgentShellWriteParams,
  ShellOp,
} from "../channel/protocol.js";
import { PyroError } from "../contract/errors.js";
import { processes, sendSignal, wait, whenAborted } from "./procs.js";
import { foregroundPgrp, spawnPty } from "./spawner.js";
import { processEnv } from "./trust.js";

/** Output kept per shell; the oldest bytes go first. */
export const SHELL_BUFFER_BYTES = 1024 * 1024;
/** How long output is still read after the shell exits (a read of the master does not end under gVisor). */
const EXIT_DRAIN_MS = 100;
/** How long close gives the session's processes between SIGHUP and SIGKILL. */
const CLOSE_GRACE_MS = 200;

type State = AgentShellInfo["state"];

/** The last `capacity` bytes of a stream, addressed by absolute offsets since the stream began. */
export class OutputBuffer {
  /** Bytes ever appended. */
  total = 0;
  private data = Buffer.alloc(64 * 1024);
  private head = 0;
  private tail = 0;

  constructor(private readonly capacity = SHELL_BUFFER_BYTES) {}

  /** Absolute offset of the oldest byte kept. */
  get start(): number {
    return this.total - (this.tail - this.head);
  }

  append(chunk: Buffer): void {
    this.total += chunk.length;
    const piece = chunk.length > this.capacity ? chunk.subarray(chunk.length - this.capacity) : chunk;
    this.head = Math.min(this.tail, this.head + Math.max(0, this.tail - this.head + piece.length - this.capacity));
    if (this.tail + piece.length > this.data.length) {
      // Room for twice the capacity, so the kept bytes move at most once per capacity appended.
      const size = Math.min(2 * this.capacity, Math.max(2 * this.data.length, this.tail - this.head + piece.length));
      const next = size > this.data.length ? Buffer.alloc(size) : this.data;
      this.data.copy(next, 0, this.head, this.tail);
      this.data = next;
      this.tail -= this.head;
      this.head = 0;
    }
    piece.copy(this.data, this.tail);
    this.tail += piece.length;
  }

  /** A copy of the kept bytes in [from, to), both absolute and within [start, total]. */
  slice(from: number, to: number): Buffer {
    const at = this.head + from - this.start;
    return Buffer.from(this.data.subarray(at, at + to - from));
  }
}

/** How many of the bytes to keep so that they do not end inside a UTF-8 sequence. */
function completeUtf8Length(bytes: Buffer): number {
  for (let i = bytes.length - 1; i >= Math.max(0, bytes.length - 4); i--) {
    const b = bytes[i]!;
    if ((b & 0xc0) === 0x80) continue;
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return bytes.length - i < need ? i : bytes.length;
  }
  return bytes.length;
}

function defaultArgv(): string[] {
  return existsSync("/bin/bash") ? ["/bin/bash", "-i"] : ["/bin/sh", "-i"];
}

class Shell {
  state: State = "running";
  exitCode: number | null = null;
  readonly output = new OutputBuffer();
  lastOutputAt = Date.now();
  /** Settles once no more output can arrive (the master is closed). */
  readonly outputEnded: Promise<void>;
  private readonly startedAt = new Date().toISOString();
  private readonly terminal: ReadStream;

  constructor(
    readonly id: string,
    readonly pid: number,
    private readonly master: number,
    exit: Promise<{ code: number | null; signal: string | null }>,
    private readonly cwd: string,
    private readonly cols: number,
    private readonly rows: number,
  ) {
    this.terminal = new ReadStream(this.master);
    this.terminal.on("data", (chunk: Buffer) => {
      this.output.append(chunk);
      this.lastOutputAt = Date.now();
    });
    // Linux reports EIO on the master once the last replica closes; the exit below ends the shell.
    this.terminal.on("error", () => {});
    this.outputEnded = new Promise((resolve) => this.terminal.once("close", resolve));
    void exit.then(async (outcome) => {
      this.exitCode = outcome.code ?? signalExitCode(outcome.signal);
      if (this.state === "running") this.state = "exited";
      await wait(EXIT_DRAIN_MS, this.outputEnded);
      this.terminal.destroy();
    });
  }

  get running(): boolean {
    return this.state === "running" && !this.terminal.destroyed;
  }

  info(): AgentShellInfo {
    return {
      shell_id: this.id,
      pid: this.pid,
      state: this.state,
      exit_code: this.exitCode,
      cwd: this.cwd,
      cols: this.cols,
      rows: this.rows,
      started_at: this.startedAt,
    };
  }

  write(input: Buffer): void {
    this.terminal.write(input);
  }

  /** The process group a person's ^C would reach. Linux answers through the master; gVisor answers
   * only inside the terminal's session, so there the newest job the shell started stands in for the
   * foreground one, and the shell itself when it has none. */
  foregroundGroup(): number {
    let pgrp = 0;
    try {
      pgrp = foregroundPgrp(this.master);
    } catch {}
    // 0 would mean "my own group" to kill(): never signal the agent.
    if (pgrp > 0) return pgrp;
    const jobs = processes()
      .filter((p) => p.session === this.pid)
      .filter((p) => p.pgrp !== this.pid && p.state !== "Z");
    const newest = jobs.sort((a, b) => b.started - a.started || b.pid - a.pid)[0];
    return newest?.pgrp ?? this.pid;
  }

  /** Ends every process of the shell's session (HUP, then KILL) and closes the terminal. */
  async close(): Promise<void> {
    const wasRunning = this.state === "running";
    this.state = "closed";
    const signalAll = (sig: NodeJS.Signals) => {
      if (wasRunning) sendSignal(-this.pid, sig);
      for (const p of processes().filter((p) => p.session === this.pid)) sendSignal(p.pid, sig);
    };
    signalAll("SIGHUP");
    await wait(CLOSE_GRACE_MS);
    signalAll("SIGKILL");
    this.terminal.destroy();
  }
}

/** The agent's shells by id; closed shells stay listed, with their output, until the agent ends. */
export class ShellRegistry {
  private readonly shells = new Map<string, Shell>();

  open(params: z.output<typeof AgentShellOpenParams>): AgentShellInfo {
    if (!statSync(params.cwd, { throwIfNoEntry: false })?.isDirectory()) {
      throw new PyroError("INVALID_ARGUMENT", `working directory ${params.cwd} does not exist in the sandbox`);
    }
    const [file, ...args] = params.argv ?? defaultArgv();
    const env = processEnv({ TERM: "xterm-256color", ...params.env });
    let spawned: ReturnType<typeof spawnPty>;
    try {
      spawned = spawnPty(file!, args, { cwd: params.cwd, env, cols: params.cols, rows: params.rows });
    } catch (err) {
      if (err instanceof PyroError) throw err;
      const e = err as Error & { errno?: number };
      if (e.errno === 2) {
        throw new PyroError(
          "COMMAND_NOT_FOUND",
          `${file}: command not found in the sandbox; give a program that exists`,
        );
      }
      throw new PyroError("INTERNAL", `could not start a shell on a terminal: ${e.message}`);
    }
    const id = `sh-${randomBytes(4).toString("hex")}`;
    const shell = new Shell(id, spawned.pid, spawned.master, spawned.exit, params.cwd, params.cols, params.rows);
    this.shells.set(id, shell);
    return shell.info();
  }

  async read(params: z.output<typeof AgentShellReadParams>, ctx: HandlerContext): Promise<AgentShellReadResult> {
    const shell = this.get(params.shell_id);
    if (params.wait_for_idle_ms !== undefined) {
      await this.waitForIdle(shell, params.wait_for_idle_ms, params.max_wait_ms, ctx.signal);
    }
    const { output } = shell;
    const start = output.start;
    const total = output.total;
    const cursor = Math.min(Math.max(params.cursor, start), total);
    let bytes = output.slice(cursor, Math.min(total, cursor + params.max_bytes));
    // A running shell may be mid-character: leave a partial UTF-8 sequence for the next read.
    if (shell.state === "running") bytes = bytes.subarray(0, completeUtf8Length(bytes));
    const historyStart = Math.max(start, cursor - params.history_max_bytes);
    for (const part of [output.slice(historyStart, cursor), bytes]) {
      for (let off = 0; off < part.length; off += DATA_CHUNK_BYTES) {
        await ctx.send(Stream.STDOUT, part.subarray(off, off + DATA_CHUNK_BYTES));
      }
    }
    return {
      ...shell.info(),
      history_start: historyStart,
      cursor,
      next_cursor: cursor + bytes.length,
      truncated: params.cursor < start,
    };
  }

  write(params: z.output<typeof AgentShellWriteParams>): { shell_id: string; bytes_written: number } {
    const shell = this.running(params.shell_id);
    const input = Buffer.from(params.input, "utf8");
    shell.write(input);
    return { shell_id: shell.id, bytes_written: input.length };
  }

  signal(params: z.output<typeof AgentShellSignalParams>): AgentShellInfo {
    const shell = this.running(params.shell_id);
    sendSignal(-shell.foregroundGroup(), `SIG${params.signal}`);
    return shell.info();
  }

  async close(shellId: string): Promise<AgentShellInfo> {
    const shell = this.get(shellId);
    if (shell.state !== "closed") await shell.close();
    return shell.info();
  }

  list(): AgentShellInfo[] {
    return [...this.shells.values()].map((s) => s.info());
  }

  private get(shellId: string): Shell {
    const shell = this.shells.get(shellId);
    if (shell) return shell;
    const known = [...this.shells.keys()].join(", ") || "none";
    throw new PyroError(
      "SHELL_NOT_FOUND",
      `no shell ${shellId} in this sandbox (shells: ${known}); open one with shell open or list them`,
    );
  }

  private running(shellId: string): Shell {
    const shell = this.get(shellId);
    if (shell.running) return shell;
    const how =
      shell.state === "closed"
        ? "was closed"
        : shell.exitCode === null
          ? "has ended"
          : `exited with code ${shell.exitCode}`;
    throw new PyroError("INVALID_ARGUMENT", `shell ${shellId} ${how}; read its remaining output, or open a new shell`);
  }

  /** Waits until no output has arrived for idleMs (counted from the later of now and the last
   * output), the output ends, maxWaitMs passes or the caller gives up. */
  private async waitForIdle(shell: Shell, idleMs: number, maxWaitMs: number, signal: AbortSignal): Promise<void> {
    const began = Date.now();
    const deadline = began + maxWaitMs;
    const gaveUp = whenAborted(signal);
    let ended = false;
    const outputEnded = shell.outputEnded.then(() => {
      ended = true;
    });
    while (!ended && !signal.aborted && shell.state !== "closed") {
      const until = Math.min(Math.max(began, shell.lastOutputAt) + idleMs, deadline);
      const now = Date.now();
      if (now >= until) return;
      await wait(until - now, outputEnded, gaveUp);
    }
  }
}

export function shellHandlers(registry = new ShellRegistry()): AgentHandlers {
  return {
    [ShellOp.OPEN]: async (p) => registry.open(p),
    [ShellOp.READ]: (p, ctx) => registry.read(p, ctx),
    [ShellOp.WRITE]: async (p) => registry.write(p),
    [ShellOp.SIGNAL]: async (p) => registry.signal(p),
    [ShellOp.CLOSE]: (p) => registry.close(p.shell_id),
    [ShellOp.LIST]: async () => ({ shells: registry.list() }),
  };
}
