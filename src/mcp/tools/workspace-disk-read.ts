// Owns the `workspace_disk_read` tool: a stopped workspace's file, without a sandbox.
import { FileReadParams, FileReadResult } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceDiskRead = defineTool({
  name: "workspace_disk_read",
  title: "Read a stopped workspace's file",
  description: [
    "Read a UTF-8 text file of a STOPPED workspace without starting it, up to `max_bytes` (default",
    "65536). For a running workspace use workspace_file_read. Returns content, size_bytes and truncated.",
    "`workspace` takes the id or the name.",
  ].join(" "),
  inputSchema: FileReadParams,
  outputSchema: FileReadResult,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.diskRead(args),
});
