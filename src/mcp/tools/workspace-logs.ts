// Owns the `workspace_logs` tool: the workspace's command history.
import { WorkspaceLogsParams, WorkspaceLogsResult } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceLogs = defineTool({
  name: "workspace_logs",
  title: "Show a workspace's command history",
  description: [
    "List the commands workspace_exec ran in a workspace, in order: sequence, command, cwd, exit_code,",
    "timed_out, duration_ms, started_at and the byte counts of stdout and stderr (the output itself is not",
    "kept). Use it to recall what was already tried. `workspace` takes the id or the name.",
    "With `network: true` (network policy allowlist) it returns instead the newest `limit` network decisions:",
    "each lookup and connection with name, port, allowed or denied, the rule or reason, bytes and duration.",
    "Returns workspace_id, count, commands (and network).",
  ].join(" "),
  inputSchema: WorkspaceLogsParams,
  outputSchema: WorkspaceLogsResult,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.logs(args),
});
