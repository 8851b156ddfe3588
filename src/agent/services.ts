// Owns services inside the sandbox: named long-running processes, each in its own process group,
// with a readiness probe (file, tcp, http or command) run from here, the last 1 MiB of each output
// stream kept in memory (never on disk), and stop as TERM to the group, then KILL after a grace.

import { existsSync, statSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import { resolve } from "node:path";
import type { z } from "zod";
import type { AgentHandlers } from "../channel/agent-ops.js";
import type { HandlerContext } from "../channel/channel.js";
import { DATA_CHUNK_BYTES, Stream } from "../channel/frame.js";
import { signalExitCode } from "../channel/output.js";
import type { AgentParsedParams } from "../channel/protocol.js";
import { type AgentServiceInfo, type AgentServiceStartParams, commandToArgv, ServiceOp } from "../channel/protocol.js";
import { PyroError } from "../contract/errors.js";
import type { Readiness } from "../contract/interactive.js";
import { processes, sendSignal, wait, whenAborted } from "./procs.js";
import { type ProcessExit, type Spawned, spawnProcess } from "./spawner.js";
import { processEnv } from "./trust.js";

/** Output kept per stream; the oldest bytes go first. */
export const LOG_BUFFER_BYTES = 1024 * 1024;
/** How long a service that failed to become ready (or was cancelled) gets between TERM and KILL. */
const FAILED_KILL_GRACE_MS = 2_000;
/** Grace given to each service when the agent shuts down. */
const SHUTDOWN_GRACE_MS = 2_000;
const TCP_HTTP_PROBE_MAX_MS = 2_000;
const COMMAND_PROBE_MAX_MS = 5_000;
/** How often stop looks whether the process group is gone. */
const GROUP_POLL_MS = 25;

type State = AgentServiceInfo["state"];
type StartParams = z.output<typeof AgentServiceStartParams>;
type Ending = { state: "stopped" } | { state: "failed"; reason: string };

const LIVE_STATES: ReadonlySet<State> = new Set(["starting", "running", "ready"]);

/** The tail of a byte stream: at most maxBytes, remembering whether anything was dropped. */
export class LogBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(private readonly maxBytes = LOG_BUFFER_BYTES) {}

  append(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.maxBytes) {
      const excess = this.size - this.maxBytes;
      const first = this.chunks[0]!;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        // Copy, so the dropped part of a large chunk is not kept alive by a view into it.
        this.chunks[0] = Buffer.from(first.subarray(excess));
        this.size -= excess;
      }
      this.truncated = true;
    }
  }

  contents(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

/** The last n lines of data (a trailing newline ends the last line, it does not start another). */
export function tailLines(data: Buffer, n: number): { data: Buffer; cut: boolean } {
  let start = data.length > 0 && data[data.length - 1] === 0x0a ? data.length - 1 : data.length;
  for (let line = 0; line < n; line++) {
    const newline = start === 0 ? -1 : data.lastIndexOf(0x0a, start - 1);
    if (newline < 0) return { data, cut: false };
    start = newline;
  }
  return { data: data.subarray(start + 1), cut: true };
}

function exitCodeOf(exit: ProcessExit): number {
  return exit.code ?? signalExitCode(exit.signal);
}

function spawnFailure(file: string, error: NodeJS.ErrnoException): string {
  if (error.code === "ENOENT") return `${file}: command not found`;
  if (error.code === "EACCES") return `${file}: permission denied`;
  return `${file}: ${error.message}`;
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

/** Whether any process of the group is still running; zombies waiting for init to reap them are not. */
function groupAlive(pgid: number): boolean {
  return processes().some((p) => p.pgrp === pgid && p.state !== "Z");
}

// ---- readiness probes -------------------------------------------------------------------------

/** ready, or what the probe saw instead (for the failure reason). */
type ProbeResult = { ready: true } | { ready: false; saw: string };

interface ProbeContext {
  cwd: string;
  env: Record<string, string>;
  intervalMs: number;
}

/** Never rejects: a probe that throws reports what it threw. */
async function probe(readiness: Readiness, ctx: ProbeContext): Promise<ProbeResult> {
  try {
    return await runProbe(readiness, ctx);
  } catch (err) {
    return { ready: false, saw: err instanceof Error ? err.message : String(err) };
  }
}

function runProbe(readiness: Readiness, ctx: ProbeContext): Promise<ProbeResult> {
  switch (readiness.type) {
    case "file":
      return Promise.resolve(
        existsSync(resolve(ctx.cwd, readiness.path))
          ? { ready: true }
          : { ready: false, saw: `${readiness.path} does not exist` },
      );
    case "tcp":
      return probeTcp(readiness.host, readiness.port, Math.min(ctx.intervalMs, TCP_HTTP_PROBE_MAX_MS));
    case "http":
      return probeHttp(readiness.url, Math.min(ctx.intervalMs, TCP_HTTP_PROBE_MAX_MS));
    case "command":
      return probeCommand(commandToArgv(readiness.command), ctx, Math.min(ctx.intervalMs, COMMAND_PROBE_MAX_MS));
  }
}

function networkError(err: NodeJS.ErrnoException): string {
  if (err.code === "ECONNREFUSED") return "connection refused";
  if (err.code === "ECONNRESET") return "connection reset";
  return err.code ?? err.message;
}

function probeTcp(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((done) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    const finish = (result: ProbeResult) => {
      socket.destroy();
      done(result);
    };
    socket.once("connect", () => finish({ ready: true }));
    socket.once("timeout", () => finish({ ready: false, saw: `${host}:${port}: no answer within ${timeoutMs} ms` }));
    socket.once("error", (err) => finish({ ready: false, saw: `${host}:${port}: ${networkError(err)}` }));
  });
}

function probeHttp(url: string, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((done) => {
    const request = url.startsWith("https:") ? httpsRequest : httpRequest;
    // A fresh connection per probe (agent: false): a pooled one could outlive the service.
    const req = request(url, { method: "GET", agent: false, timeout: timeoutMs }, (res) => {
      const status = res.statusCode ?? 0;
      res.destroy();
      done(status >= 200 && status < 400 ? { ready: true } : { ready: false, saw: `${url} answered ${status}` });
    });
    req.once("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.once("error", (err: NodeJS.ErrnoException) => done({ ready: false, saw: `${url}: ${networkError(err)}` }));
    req.end();
  });
}

async function probeCommand(argv: string[], ctx: ProbeContext, timeoutMs: number): Promise<ProbeResult> {
  const [file, ...args] = argv;
  const child = spawnProcess(file!, args, { cwd: ctx.cwd, env: ctx.env });
  child.stdout.resume();
  child.stderr.resume();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    if (child.pid !== undefined) sendSignal(-child.pid, "SIGKILL");
  }, timeoutMs);
  const exit = await child.exit;
  clearTimeout(timer);
  const command = argv.join(" ");
  if (exit.error) return { ready: false, saw: spawnFailure(file!, exit.error) };
  if (timedOut) return { ready: false, saw: `${command} did not finish within ${timeoutMs} ms` };
  const code = exitCodeOf(exit);
  return code === 0 ? { ready: true } : { ready: false, saw: `${command} exited with code ${code}` };
}

// ---- one service ------------------------------------------------------------------------------

class Service {
  readonly stdout = new LogBuffer();
  readonly stderr = new LogBuffer();
  readonly startedAt = new Date();
  private readonly child: Spawned;
  private readonly env: Record<string, string>;
  /** Resolves once the process has exited and the state says how. */
  readonly ended: Promise<void>;
  private state: State = "starting";
  private readyAt: Date | null = null;
  private endedAt: Date | null = null;
  private exitCode: number | null = null;
  private reason: string | null = null;
  /** Set when pyro ends the process (stop, readiness timeout, cancel): the state it ends in. */
  private ending: Ending | undefined;

  constructor(private readonly params: StartParams) {
    this.env = processEnv(params.env);
    const [file, ...args] = params.argv;
    // Its own session and process group, so stop reaches everything it started.
    this.child = spawnProcess(file!, args, { cwd: params.cwd, env: this.env });
    this.child.stdout.on("data", (chunk: Buffer) => this.stdout.append(chunk));
    this.child.stderr.on("data", (chunk: Buffer) => this.stderr.append(chunk));
    this.child.stdout.on("error", () => {});
    this.child.stderr.on("error", () => {});
    this.ended = this.child.exit.then((exit) => this.onExit(exit));
  }

  get name(): string {
    return this.params.name;
  }

  get live(): boolean {
    return LIVE_STATES.has(this.state);
  }

  info(): AgentServiceInfo {
    return {
      service_name: this.params.name,
      state: this.state,
      pid: this.child.pid ?? null,
      argv: this.params.argv,
      cwd: this.params.cwd,
      started_at: this.startedAt.toISOString(),
      ready_at: this.readyAt?.toISOString() ?? null,
      ended_at: this.endedAt?.toISOString() ?? null,
      exit_code: this.exitCode,
      readiness: this.params.readiness,
      reason: this.reason,
    };
  }

  /** Resolves once the state has left "starting": ready, running, or ended. */
  async started(signal: AbortSignal): Promise<void> {
    const readiness = this.params.readiness;
    // A process that could not be spawned has no pid; its exit (with the error) is on its way.
    if (this.child.pid === undefined) return this.ended;
    if (readiness === null) {
      this.state = "running";
      return;
    }
    const cancelled = whenAborted(signal);
    const deadline = Date.now() + this.params.ready_timeout_ms;
    const ctx = { cwd: this.params.cwd, env: this.env, intervalMs: this.params.ready_interval_ms };
    while (this.state === "starting") {
      if (signal.aborted) return this.terminate(FAILED_KILL_GRACE_MS, { state: "failed", reason: "cancelled" });
      const result = await Promise.race([probe(readiness, ctx), this.ended, cancelled]);
      if (this.state !== "starting" || signal.aborted || !result) continue;
      if (result.ready) {
        this.state = "ready";
        this.readyAt = new Date();
        return;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        const reason = `not ready within ${seconds(this.params.ready_timeout_ms)}: ${result.saw}`;
        return this.terminate(FAILED_KILL_GRACE_MS, { state: "failed", reason });
      }
      await wait(Math.min(this.params.ready_interval_ms, remaining), this.ended, cancelled);
    }
  }

  /**
   * TERM to the process group; KILL to it once graceMs have passed with the service or anything it
   * started still there. Resolves when the service has ended.
   */
  async terminate(graceMs: number, ending: Ending): Promise<void> {
    const pgid = this.child.pid;
    if (!this.live || pgid === undefined) return this.ended;
    this.ending ??= ending;
    sendSignal(-pgid, "SIGTERM");
    const deadline = Date.now() + graceMs;
    await wait(graceMs, this.ended);
    // The service itself has gone (or the grace is up): give what it started the rest of the grace.
    while (Date.now() < deadline && groupAlive(pgid)) {
      await wait(Math.min(GROUP_POLL_MS, deadline - Date.now()));
    }
    sendSignal(-pgid, "SIGKILL");
    return this.ended;
  }

  private onExit(exit: ProcessExit): void {
    this.endedAt = new Date();
    if (exit.error) {
      this.state = "failed";
      this.exitCode = exit.error.code === "ENOENT" ? 127 : 126;
      this.reason = spawnFailure(this.params.argv[0]!, exit.error);
      return;
    }
    this.exitCode = exitCodeOf(exit);
    if (this.ending) {
      this.state = this.ending.state;
      this.reason = this.ending.state === "failed" ? this.ending.reason : null;
    } else if (this.state === "starting") {
      this.state = "failed";
      this.reason = `exited with code ${this.exitCode} before it was ready`;
    } else {
      this.state = "exited";
    }
  }
}

// ---- the registry and its handlers --------------------------------------------------------------

export class ServiceRegistry {
  /** In start order: a replaced service is deleted before its successor is added. */
  private readonly services = new Map<string, Service>();

  async start(params: AgentParsedParams<typeof ServiceOp.START>, ctx: HandlerContext): Promise<AgentServiceInfo> {
    if (!statSync(params.cwd, { throwIfNoEntry: false })?.isDirectory()) {
      throw new PyroError(
        "INVALID_ARGUMENT",
        `working directory ${params.cwd} does not exist in the sandbox; create it first or pick another cwd`,
      );
    }
    const readiness = params.readiness;
    if (readiness?.type === "http" && !/^https?:\/\//i.test(readiness.url)) {
      throw new PyroError(
        "INVALID_ARGUMENT",
        `readiness.url ${readiness.url} is not an http:// or https:// URL; give one, or use a tcp probe`,
      );
    }
    const existing = this.services.get(params.name);
    if (existing?.live) {
      throw new PyroError(
        "SERVICE_EXISTS",
        `service ${params.name} is already running (state ${existing.info().state}); stop it first or pick another name`,
      );
    }
    this.services.delete(params.name);
    const service = new Service(params);
    this.services.set(params.name, service);
    await service.started(ctx.signal);
    return service.info();
  }

  list(): { services: AgentServiceInfo[] } {
    return { services: [...this.services.values()].map((s) => s.info()) };
  }

  status(name: string): AgentServiceInfo {
    return this.find(name).info();
  }

  async logs(
    params: AgentParsedParams<typeof ServiceOp.LOGS>,
    ctx: HandlerContext,
  ): Promise<{ service_name: string; truncated: boolean }> {
    const service = this.find(params.name);
    let truncated = false;
    for (const [stream, buffer] of [
      [Stream.STDOUT, service.stdout],
      [Stream.STDERR, service.stderr],
    ] as const) {
      let data = buffer.contents();
      truncated ||= buffer.truncated;
      if (params.tail_lines !== undefined) {
        const tail = tailLines(data, params.tail_lines);
        data = tail.data;
        truncated ||= tail.cut;
      }
      for (let at = 0; at < data.length; at += DATA_CHUNK_BYTES) {
        await ctx.send(stream, data.subarray(at, at + DATA_CHUNK_BYTES));
      }
    }
    return { service_name: service.name, truncated };
  }

  /** Stopping a service that has already ended just reports it. */
  async stop(params: AgentParsedParams<typeof ServiceOp.STOP>): Promise<AgentServiceInfo> {
    const service = this.find(params.name);
    await service.terminate(params.grace_ms, { state: "stopped" });
    return service.info();
  }

  /** Stops every live service (agent shutdown). */
  async stopAll(graceMs = SHUTDOWN_GRACE_MS): Promise<void> {
    await Promise.all([...this.services.values()].map((s) => s.terminate(graceMs, { state: "stopped" })));
  }

  handlers(): AgentHandlers {
    return {
      [ServiceOp.START]: (p, ctx) => this.start(p, ctx),
      [ServiceOp.LIST]: async () => this.list(),
      [ServiceOp.STATUS]: async (p) => this.status(p.name),
      [ServiceOp.LOGS]: (p, ctx) => this.logs(p, ctx),
      [ServiceOp.STOP]: (p) => this.stop(p),
    };
  }

  private find(name: string): Service {
    const service = this.services.get(name);
    if (!service) {
      const known = [...this.services.keys()];
      throw new PyroError(
        "SERVICE_NOT_FOUND",
        `no service named ${name} in this sandbox; ${known.length > 0 ? `the services here are ${known.join(", ")}` : "start it first"}`,
      );
    }
    return service;
  }
}
