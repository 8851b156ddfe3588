// Owns the `shell_write` tool: typing into a shell.
import { ShellWriteParams, ShellWriteResult } from "../../contract/interactive.js";
import { defineTool } from "../tool.js";

export const shellWrite = defineTool({
  name: "shell_write",
  title: "Type into a shell",
  description: [
    "Type `input` into a shell, followed by Enter unless `append_newline` is false (false sends keys",
    "alone, e.g. 'dd' or an Escape '\\u001b' to a full-screen program like vi). Then read the result with shell_read",
    "(`plain: true, wait_for_idle_ms: 500`). To interrupt a running command use shell_signal, not ^C text.",
    "Returns bytes_written.",
    "`workspace` takes the id or the name.",
  ].join(" "),
  inputSchema: ShellWriteParams,
  outputSchema: ShellWriteResult,
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  call: (args, { manager }) => manager.shells.write(args),
});
