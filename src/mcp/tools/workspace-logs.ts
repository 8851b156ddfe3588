// Owns the `workspace_logs` tool: the workspace's command history.
import { WorkspaceLogsResult, WorkspaceRefParams } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceLogs = defineTool({
  name: "workspace_logs",
  title: "Show a workspace's command history",
  description: [
    "List the commands workspace_exec ran in a workspace, in order: sequence, command, cwd, exit_code,",
    "timed_out, duration_ms, started_at and the byte counts of stdout and stderr (the output itself is not",
    "kept). Use it to recall what was already tried. `workspace` takes the id or the name.",
    "Returns workspace_id, count and commands.",
  ].join(" "),
  inputSchema: WorkspaceRefParams,
  outputSchema: WorkspaceLogsResult,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.logs(args),
});
