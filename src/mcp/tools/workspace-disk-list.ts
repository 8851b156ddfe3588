// Owns the `workspace_disk_list` tool: a stopped workspace's files, without a sandbox.
import { FileListParams, FileListResult } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceDiskList = defineTool({
  name: "workspace_disk_list",
  title: "List a stopped workspace's files",
  description: [
    "List `path` (default /workspace) of a STOPPED workspace without starting it; `recursive` descends.",
    "For a running workspace use workspace_file_list. Returns entries with path, artifact_type, size_bytes",
    "and link_target.",
    "`workspace` takes the id or the name.",
  ].join(" "),
  inputSchema: FileListParams,
  outputSchema: FileListResult,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.diskList(args),
});
