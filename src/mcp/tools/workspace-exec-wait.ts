// Owns the `workspace_exec_wait` tool: more output, and in the end the outcome, of a command that
// workspace_exec returned as still running.
import { DEFAULTS } from "../../contract/defaults.js";
import { WaitSeconds, WorkspaceExecResult, WorkspaceExecWaitParams } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";
import { withOutputProgress } from "./workspace-exec.js";

/** Cancelling a wait leaves the command running, so a wait may outlast a client's timeout; it is
 * bounded all the same, so that no call hangs for long. */
const MCP_WAIT_MAX_SECONDS = 300;

export const workspaceExecWait = defineTool({
  name: "workspace_exec_wait",
  title: "Wait for a running command",
  description: [
    "Wait for a command that workspace_exec returned with running: true, by its `sequence`. Returns the",
    "output printed since the previous reply for that command (or from `stdout_offset`/`stderr_offset`,",
    "e.g. a reply's next_stdout_offset, to read again) and running: true while it still runs after",
    `\`wait_seconds\` (default ${DEFAULTS.execWaitSeconds}); call again until running is false, when exit_code, timed_out and`,
    "duration_ms are final. Output also arrives as progress notifications while the call waits.",
    "`cancel: true` kills the command with every process it started and returns its final result",
    "(cancelled: true, exit_code 137); cancelling this call itself only stops waiting. Commands belong to",
    "this MCP server: a finished command's output is kept 10 minutes. `workspace` takes the id or the name.",
  ].join(" "),
  inputSchema: WorkspaceExecWaitParams.extend({
    wait_seconds: WaitSeconds.max(MCP_WAIT_MAX_SECONDS)
      .default(DEFAULTS.execWaitSeconds)
      .describe(
        `Wait at most this long for the command to end (default ${DEFAULTS.execWaitSeconds}, at most ${MCP_WAIT_MAX_SECONDS}).`,
      ),
  }),
  outputSchema: WorkspaceExecResult,
  // With cancel it kills the command; each reply moves on where the previous one ended.
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  call: (args, { manager, signal, progress }) =>
    withOutputProgress(progress, `workspace ${args.workspace}: command ${args.sequence} running`, (onOutput) =>
      manager.workspaces.execWait(args, { signal, onOutput }),
    ),
});
