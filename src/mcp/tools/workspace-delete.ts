// Owns the `workspace_delete` tool: stopping a workspace and removing everything it kept.
import { WorkspaceDeleteResult, WorkspaceRefParams } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceDelete = defineTool({
  name: "workspace_delete",
  title: "Delete a workspace",
  description: [
    "Stop a workspace's sandbox and permanently delete its /workspace files, baseline and command history",
    "from the host. Export anything worth keeping first (workspace_export, or workspace_diff for the",
    "changes). Deleting a workspace that is already gone succeeds with deleted false.",
    "`workspace` takes the id or the name. Returns workspace_id and deleted.",
  ].join(" "),
  inputSchema: WorkspaceRefParams,
  outputSchema: WorkspaceDeleteResult,
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.delete(args),
});
