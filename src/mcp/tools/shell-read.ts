// Owns the `shell_read` tool: a shell's output from a cursor, raw or rendered.
import { ShellReadParams, ShellReadResult } from "../../contract/interactive.js";
import { defineTool } from "../tool.js";

export const shellRead = defineTool({
  name: "shell_read",
  title: "Read a shell's output",
  description: [
    "Read what a shell printed since `cursor` (0 for everything kept, then the previous read's",
    "next_cursor to get only new output). Use `plain: true` to get the text as a person would see it on",
    "the terminal (colours and cursor movement applied, no escape sequences; a full-screen program such",
    "as vi or less reads as its screen), and `wait_for_idle_ms` (e.g. 500) to wait until the shell has",
    "been quiet that long, so a command's output arrives whole (bounded by `max_wait_ms`, default 10000).",
    "Returns output, cursor, next_cursor, truncated (true when older output was dropped from the 1 MiB",
    "buffer), plain, and the shell's state (running, exited with exit_code, closed).",
    "`workspace` takes the id or the name.",
  ].join(" "),
  inputSchema: ShellReadParams,
  outputSchema: ShellReadResult,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.shells.read(args),
});
