// Owns the `snapshot_create` tool: a named checkpoint of /workspace.
import { SnapshotInfo, SnapshotParams } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const snapshotCreate = defineTool({
  name: "snapshot_create",
  title: "Checkpoint a workspace",
  description: [
    "Save the files of /workspace as a named snapshot (`snapshot_name`), e.g. before a risky change,",
    "so workspace_reset with `snapshot` can return to it exactly (content, modes, symlinks, empty",
    "directories). Cheap: files unchanged since another snapshot or the baseline are shared. Installed",
    "packages outside /workspace are not part of it. Returns snapshot_name, created_at, size_bytes,",
    "file_count and shared_bytes.",
    "`workspace` takes the id or the name.",
  ].join(" "),
  inputSchema: SnapshotParams,
  outputSchema: SnapshotInfo,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.snapshotCreate(args),
});
