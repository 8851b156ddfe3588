// Owns the `workspace_exec` tool: one command in a running workspace, returned when it ends or,
// for a long one, as running after `wait_seconds` (it goes on; workspace_exec_wait collects it).
import type { z } from "zod";
import { DEFAULTS } from "../../contract/defaults.js";
import { WaitSeconds, WorkspaceExecParams, WorkspaceExecResult } from "../../contract/workspace.js";
import type { ManagerApi, ProgressReporter } from "../../sdk/manager.js";
import { defineTool } from "../tool.js";

/** Over MCP a call must answer within the client's request timeout, 60 s unless it says otherwise:
 * so workspace_exec waits at most this long, and cancelling it (which a timeout does) kills the
 * command. */
export const MCP_EXEC_WAIT_MAX_SECONDS = 50;

/** A command still running after this long says so, and then every 10 s (the progress heartbeat). */
const RUNNING_NOTICE_MS = 5_000;

/**
 * Runs `call` with the command's output relayed as progress; a command that runs long is also
 * announced as a phase, so that its heartbeat keeps a client that resets its timeout on progress
 * waiting (quick commands send nothing).
 */
export async function withOutputProgress<T>(
  progress: ProgressReporter | undefined,
  notice: string,
  call: (onOutput: ((stream: "stdout" | "stderr", text: string) => void) | undefined) => Promise<T>,
): Promise<T> {
  const timer = progress ? setTimeout(() => progress.phase("exec", notice), RUNNING_NOTICE_MS) : undefined;
  timer?.unref();
  try {
    return await call(progress?.output ? (stream, text) => progress.output?.(stream, text) : undefined);
  } finally {
    clearTimeout(timer);
  }
}

const waitSeconds = WaitSeconds.max(MCP_EXEC_WAIT_MAX_SECONDS)
  .default(DEFAULTS.execWaitSeconds)
  .describe(
    `Return after this many seconds (default ${DEFAULTS.execWaitSeconds}, at most ${MCP_EXEC_WAIT_MAX_SECONDS}: MCP clients ` +
      "give up on a call after 60 s) if the command is still running; it keeps running.",
  );

type ExecArgs = Omit<z.output<typeof WorkspaceExecParams>, "secret_env"> & { secret_env?: Record<string, string> };

/** Core's exec has no `secret_env`: no secret reaches its commands. */
const execCall = (
  { secret_env = {}, ...args }: ExecArgs,
  ctx: { manager: ManagerApi; signal: AbortSignal; progress: ProgressReporter | undefined },
) =>
  withOutputProgress(ctx.progress, `workspace ${args.workspace}: command running`, (onOutput) =>
    ctx.manager.workspaces.exec({ ...args, secret_env }, { signal: ctx.signal, onOutput }),
  );

export const workspaceExec = defineTool({
  name: "workspace_exec",
  title: "Run a command in a workspace",
  description: [
    "Run one command in a workspace and return its output; files it writes and packages it installs stay",
    "for later calls. `command` is a shell string (run by /bin/sh -lc, so pipes, && and redirections work)",
    "or an argv array (no shell). It runs in /workspace unless `cwd` says otherwise, and is killed with",
    `every process it started after \`timeout_seconds\` (default ${DEFAULTS.execTimeoutSeconds}, enough for a test suite).`,
    `If it is still running after \`wait_seconds\` (default ${DEFAULTS.execWaitSeconds}), the call returns running: true with`,
    "the output so far and the command's `sequence`; the command keeps running: call workspace_exec_wait",
    "with that sequence to get more output and, when it ends, its exit_code. Output also arrives as",
    "progress notifications while the call waits. Cancelling this call kills the command. To create or",
    "edit files prefer workspace_file_write or workspace_patch_apply over shell heredocs and sed; to read",
    "them prefer workspace_file_read. `workspace` takes the id or the name. Returns stdout, stderr,",
    "exit_code, running, duration_ms, timed_out, cancelled, stdout_truncated, stderr_truncated,",
    "execution_mode, workspace_id, sequence, cwd and next_stdout_offset/next_stderr_offset. A non-zero",
    "exit_code is a normal result describing the command, not a failure of the tool; exit_code 124 with",
    "timed_out true means timeout_seconds was hit.",
  ].join(" "),
  inputSchema: WorkspaceExecParams.omit({ secret_env: true }).extend({ wait_seconds: waitSeconds }),
  outputSchema: WorkspaceExecResult,
  // An arbitrary command can delete or overwrite what the workspace holds; it runs again on every call.
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  call: (args, ctx) => execCall(args, ctx),
});

/** workspace-full's exec: also `secret_env`. */
export const workspaceExecFull = defineTool({
  ...workspaceExec,
  description: `${workspaceExec.description} \`secret_env\` ({SECRET_NAME: 'ENV_VAR'}) exposes workspace secrets to the command as environment variables; their values are redacted from the output.`,
  inputSchema: WorkspaceExecParams.extend({ wait_seconds: waitSeconds }),
});
