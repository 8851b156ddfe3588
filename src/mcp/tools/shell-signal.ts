// Owns the `shell_signal` tool: a signal to a shell's foreground job.
import { ShellInfo, ShellSignalParams } from "../../contract/interactive.js";
import { defineTool } from "../tool.js";

export const shellSignal = defineTool({
  name: "shell_signal",
  title: "Signal a shell's foreground job",
  description: [
    "Send `signal` (INT, the default and what Ctrl-C does; TERM; HUP; KILL) to the job running in the",
    "shell's foreground, e.g. to stop a command that hangs. After INT the shell is back at its prompt and",
    "usable. Returns the shell's state.",
    "`workspace` takes the id or the name.",
  ].join(" "),
  inputSchema: ShellSignalParams,
  outputSchema: ShellInfo,
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  call: (args, { manager }) => manager.shells.signal(args),
});
