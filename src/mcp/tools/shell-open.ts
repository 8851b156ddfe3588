// Owns the `shell_open` tool: an interactive PTY shell in a workspace.
import { ShellInfo, ShellOpenParams } from "../../contract/interactive.js";
import { defineTool } from "../tool.js";

export const shellOpen = defineTool({
  name: "shell_open",
  title: "Open an interactive shell",
  description: [
    "Open an interactive bash shell on a real terminal (PTY) in a running workspace, for programs that",
    "need a terminal or keep state between inputs (a REPL, a debugger, an editor, a long build you want",
    "to watch). For one command and its output, workspace_exec is simpler. The shell starts in `cwd`",
    "(default /workspace) with a `cols`×`rows` terminal (default 120×30); `secret_env` maps workspace",
    "secrets to environment variables. It stays open across calls until shell_close or workspace stop.",
    "Returns shell_id (pass it to shell_read, shell_write, shell_signal, shell_close), state, cwd, cols, rows.",
    "`workspace` takes the id or the name.",
  ].join(" "),
  inputSchema: ShellOpenParams,
  outputSchema: ShellInfo,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  call: (args, { manager }) => manager.shells.open(args),
});
