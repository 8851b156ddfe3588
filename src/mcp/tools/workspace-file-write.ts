// Owns the `workspace_file_write` tool: replacing one text file in a workspace.
import { FileWriteParams, FileWriteResult } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceFileWrite = defineTool({
  name: "workspace_file_write",
  title: "Write a file in a workspace",
  description: [
    "Create a text file in a workspace or replace its whole content with `text` (`path`, inside",
    "/workspace; relative paths start there; parent directories are created). Prefer it over shell",
    "heredocs or echo through workspace_exec: the content arrives exactly, with no quoting to get wrong.",
    "To change a few lines of an existing file, workspace_patch_apply is usually shorter.",
    "`workspace` takes the id or the name. Returns workspace_id, path and bytes_written.",
  ].join(" "),
  inputSchema: FileWriteParams,
  outputSchema: FileWriteResult,
  // It replaces what the file held; writing the same text again changes nothing more.
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.writeFile(args),
});
