// Owns the `workspace_sync_push` tool: copying a host directory or archive into a workspace.
import { SyncPushParams, SyncPushResult } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceSyncPush = defineTool({
  name: "workspace_sync_push",
  title: "Copy host files into a workspace",
  description: [
    "Copy a host directory or .tar/.tar.gz/.tgz archive (`source_path`, a path on the machine running",
    "pyro) into a workspace at `dest` (default /workspace), overwriting files with the same paths and",
    "leaving the others alone. Use it to bring in host changes made after create; use workspace_file_write",
    "for a single text file. The baseline is not changed, so pushed files show up in workspace_diff.",
    "Symlinks pointing outside the source are skipped and listed. `workspace` takes the id or the name.",
    "Returns workspace_id, source_path, dest, entry_count, bytes_written and skipped.",
  ].join(" "),
  inputSchema: SyncPushParams,
  outputSchema: SyncPushResult,
  // Overwrites workspace files; pushing the same source again gives the same result.
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  call: async (args, { manager, hostPaths }) =>
    manager.workspaces.syncPush({ ...args, source_path: await hostPaths.source(args.source_path, "source_path") }),
});
