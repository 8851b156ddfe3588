// Owns the `snapshot_list` tool.
import { SnapshotListResult, WorkspaceRefParams } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const snapshotList = defineTool({
  name: "snapshot_list",
  title: "List a workspace's snapshots",
  description: [
    "List the snapshots of a workspace, oldest first: snapshot_name, created_at, size_bytes, file_count",
    "and shared_bytes. Pass a name to workspace_reset's `snapshot` to go back to it. `workspace` takes",
    "the id or the name.",
  ].join(" "),
  inputSchema: WorkspaceRefParams,
  outputSchema: SnapshotListResult,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.snapshotList(args),
});
