// Owns the `workspace_summary` tool: what happened in a workspace, in one payload.
import { WorkspaceRefParams, WorkspaceSummary } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceSummary = defineTool({
  name: "workspace_summary",
  title: "Summarize a workspace",
  description: [
    "Summarize a workspace in one call: how many commands ran and failed (with the last five), which",
    "files changed since create (paths and statuses, without the patch), what was exported and how often",
    "it was reset. Use it to pick up where earlier work left off or to report what was done; use",
    "workspace_diff for the patch itself. Changes are only known while the workspace runs; like",
    "workspace_diff's default, they leave out paths .gitignore rules ignore and .git/ internals (counted",
    "in changes.ignored).",
    "`workspace` takes the id or the name. Returns workspace_id, name, state, commands, changes, exports",
    "and reset_count.",
  ].join(" "),
  inputSchema: WorkspaceRefParams,
  outputSchema: WorkspaceSummary,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.summary(args),
});
