// Owns the `snapshot_delete` tool.
import { SnapshotDeleteResult, SnapshotParams } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const snapshotDelete = defineTool({
  name: "snapshot_delete",
  title: "Delete a snapshot",
  description: [
    "Delete one snapshot of a workspace by `snapshot_name` when it is no longer needed as a reset point;",
    "the workspace and its other snapshots are not affected (shared files stay with them). `workspace`",
    "takes the id or the name.",
  ].join(" "),
  inputSchema: SnapshotParams,
  outputSchema: SnapshotDeleteResult,
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.snapshotDelete(args),
});
