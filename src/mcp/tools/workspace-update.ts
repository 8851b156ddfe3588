// Owns the `workspace_update` tool: renaming a workspace and changing its labels.
import { WorkspaceInfo, WorkspaceUpdateParams } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceUpdate = defineTool({
  name: "workspace_update",
  title: "Rename or relabel a workspace",
  description: [
    "Change a workspace's metadata: give it a new unique `name`, set `labels` (merged into the existing",
    "ones) and remove label keys listed in `clear_labels`. Files and processes are not touched.",
    "`workspace` takes the id or the current name. Returns the updated workspace.",
  ].join(" "),
  inputSchema: WorkspaceUpdateParams,
  outputSchema: WorkspaceInfo,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.update(args),
});
