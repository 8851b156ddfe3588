// Owns the `shell_close` tool: ending a shell and everything it started.
import { ShellInfo, ShellRefParams } from "../../contract/interactive.js";
import { defineTool } from "../tool.js";

export const shellClose = defineTool({
  name: "shell_close",
  title: "Close a shell",
  description: [
    "Close a shell: every process it started, including background jobs, is ended. Its output stays",
    "readable with shell_read until the workspace stops. Closing a closed shell does nothing. Returns",
    "the shell with state closed.",
    "`workspace` takes the id or the name.",
  ].join(" "),
  inputSchema: ShellRefParams,
  outputSchema: ShellInfo,
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.shells.close(args),
});
