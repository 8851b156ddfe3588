// Owns the `workspace_file_list` tool: the entries of a directory inside a workspace.
import { FileListParams, FileListResult } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceFileList = defineTool({
  name: "workspace_file_list",
  title: "List files in a workspace",
  description: [
    "List the entries of a directory in a workspace (`path`, default /workspace; relative paths start",
    "there), each with its path, artifact_type (file, directory or symlink), size_bytes and, for a",
    "symlink, link_target. Set `recursive` to descend into subdirectories. Use it to explore a tree",
    "without running ls through workspace_exec. `workspace` takes the id or the name.",
    "Returns workspace_id, path, recursive, entries and truncated.",
  ].join(" "),
  inputSchema: FileListParams,
  outputSchema: FileListResult,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.listFiles(args),
});
