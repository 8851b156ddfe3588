// Owns the `workspace_file_read` tool: one text file's content from a workspace.
import { FileReadParams, FileReadResult } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceFileRead = defineTool({
  name: "workspace_file_read",
  title: "Read a file in a workspace",
  description: [
    "Read a text file in a workspace (`path`, inside /workspace; relative paths start there), up to",
    "`max_bytes` (default 65536). Prefer it over cat through workspace_exec: the content comes back",
    "exactly, with its full size. `workspace` takes the id or the name. Returns workspace_id, path,",
    "content, size_bytes and truncated (true when the file is larger than max_bytes; read again with a",
    "larger max_bytes if you need the rest).",
  ].join(" "),
  inputSchema: FileReadParams,
  outputSchema: FileReadResult,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.readFile(args),
});
