// Owns commands in a workspace: exec (wait for it, or return while it runs), exec wait for more of a
// running one, and the command log. A command belongs to the process that started it.
import type { z } from "zod";
import { commandToArgv } from "../channel/protocol.js";
import { DEFAULTS } from "../contract/defaults.js";
import { PyroError } from "../contract/errors.js";
import type { WorkspaceExecParams, WorkspaceExecResult, WorkspaceExecWaitParams } from "../contract/workspace.js";
import { type ExecRun, ExecRuns, FINISHED_RETAIN_MS, type OutputListener, waitForRun } from "./exec-runs.js";
import { guestPath } from "./guest.js";
import type { OpenWorkspace } from "./open-workspace.js";
import type { Redactor } from "./redact.js";
import type { WorkspaceService } from "./workspaces.js";

export class ExecService {
  /** Commands this process runs, and ones just finished whose output a caller may still collect. */
  private readonly runs = new ExecRuns();

  constructor(private readonly core: WorkspaceService) {}

  /**
   * Runs a command; it gets its sequence number (its place in `workspace logs`) as it starts. With
   * `wait_seconds` the call returns a command still running then as `running: true` with its output
   * so far, and execWait collects the rest. An aborted signal cancels the command: the agent kills
   * it with every process it started, and the log records it as cancelled.
   */
  async exec(
    params: z.output<typeof WorkspaceExecParams>,
    opts: { signal?: AbortSignal; onOutput?: OutputListener } = {},
  ): Promise<WorkspaceExecResult> {
    const ws = await this.core.open(params.workspace);
    const redactor = await ws.redactor();
    return this.core.secrets.redacting(redactor, async () => {
      const run = await this.startRun(ws, params, redactor);
      return waitForRun(run, {
        waitMs: params.wait_seconds === undefined ? undefined : params.wait_seconds * 1000,
        signal: opts.signal,
        cancelOnAbort: true,
        onOutput: opts.onOutput,
      });
    });
  }

  /**
   * More of a command that exec returned as running: its output from the given offsets (default:
   * where the previous reply ended) and, once it has ended, its outcome. An aborted signal ends only
   * this wait; `cancel` kills the command.
   */
  async execWait(
    params: z.output<typeof WorkspaceExecWaitParams>,
    opts: { signal?: AbortSignal; onOutput?: OutputListener } = {},
  ): Promise<WorkspaceExecResult> {
    const ws = await this.core.open(params.workspace);
    const redactor = await ws.redactor();
    return this.core.secrets.redacting(redactor, async () => {
      const run = this.runs.get(ws.id, params.sequence);
      if (!run) throw await this.runNotHere(ws, params.sequence);
      if (params.cancel) await run.cancel();
      return waitForRun(run, {
        waitMs: params.wait_seconds * 1000,
        signal: opts.signal,
        cancelOnAbort: false,
        onOutput: opts.onOutput,
        offsets: { stdout: params.stdout_offset, stderr: params.stderr_offset },
      });
    });
  }

  private async startRun(
    ws: OpenWorkspace,
    params: z.output<typeof WorkspaceExecParams>,
    redactor: Redactor,
  ): Promise<ExecRun> {
    const env = await ws.environment(params.secret_env);
    const client = await ws.client();
    const cwd = guestPath(params.cwd);
    // The number is the command's from its start: a cancelled command keeps it in the log, and a
    // command that outlives this call is collected by it. A long command is activity from its start
    // on (and touched while it runs), so the TTL reaper does not stop it midway.
    let sequence = 0;
    await this.core.records.mutate(ws.id, (r) => {
      sequence = r.command_count + 1;
      return { ...r, command_count: sequence, last_activity_at: new Date().toISOString() };
    });
    const command = redactCommand(redactor, params.command);
    return this.runs.start({
      client,
      workspaceId: ws.id,
      sequence,
      cwd,
      executionMode: ws.record.engine,
      redactor,
      agent: {
        argv: commandToArgv(params.command),
        cwd,
        env,
        timeout_ms: params.timeout_seconds * 1000,
        max_output_bytes: DEFAULTS.outputMaxBytes,
      },
      record: (run) => this.recordRun(run, command),
      keepAlive:
        ws.record.ttl_seconds > 0
          ? {
              everyMs: Math.max(1_000, Math.min(60_000, (ws.record.ttl_seconds * 1000) / 3)),
              touch: () => ws.touch(),
            }
          : undefined,
    });
  }

  /** Every command that started gets its log entry, with its cause when it did not end by itself.
   * One the agent refused before starting it (no such cwd) gives its number back if it still can. */
  private async recordRun(run: ExecRun, command: string | string[]): Promise<void> {
    const outcome = run.outcome;
    if (!outcome) return;
    if (run.error instanceof PyroError && run.error.code === "INVALID_ARGUMENT") {
      await this.core.records.mutate(run.workspaceId, (r) =>
        r.command_count === run.sequence ? { ...r, command_count: run.sequence - 1 } : r,
      );
      return;
    }
    await this.core.records.mutate(run.workspaceId, async (r) => {
      await this.core.records.appendCommand(r.workspace_id, {
        sequence: run.sequence,
        command,
        cwd: run.cwd,
        exit_code: outcome.exit_code,
        timed_out: outcome.timed_out,
        cancelled: outcome.cancelled,
        duration_ms: outcome.duration_ms,
        started_at: run.startedAt.toISOString(),
        stdout_bytes: run.stdout.bytes,
        stderr_bytes: run.stderr.bytes,
      });
      return { ...r, last_activity_at: new Date().toISOString() };
    });
  }

  /** Why execWait cannot find a command: it ended long enough ago, or another process ran it. */
  private async runNotHere(ws: OpenWorkspace, sequence: number): Promise<PyroError> {
    const logged = (await this.core.records.commands(ws.id)).find((c) => c.sequence === sequence);
    const running = this.runs.running(ws.id);
    const here = running.length > 0 ? ` (running here: ${running.join(", ")})` : "";
    if (logged) {
      const how = logged.timed_out ? "timed out" : logged.cancelled ? "was cancelled" : `exited ${logged.exit_code}`;
      return new PyroError(
        "INVALID_ARGUMENT",
        `command ${sequence} of workspace ${ws.id} ${how} and its output is no longer kept (a finished command's output is kept ${FINISHED_RETAIN_MS / 60_000} min, by the process that ran it)${here}; see workspace_logs (pyro workspace logs) for its record`,
      );
    }
    return new PyroError(
      "INVALID_ARGUMENT",
      `workspace ${ws.id} has no command ${sequence} started by this pyro process${here}; pass the sequence workspace_exec returned, to the same MCP server (a command ends with the process that started it)`,
    );
  }

  /** Cancels every command this process runs (the process is closing). */
  async close(): Promise<void> {
    await this.runs.cancelAll();
  }
}

function redactCommand(redactor: Redactor, command: string | string[]): string | string[] {
  return typeof command === "string" ? redactor.redact(command) : command.map((w) => redactor.redact(w));
}
