// Owns `pyro workspace shell signal`: a signal to the shell's foreground job.
import { Command, Option } from "clipanion";
import { ShellSignalParams } from "../../../../contract/interactive.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags } from "../../../flags.js";
import type { Output } from "../../../output.js";
import { SHELL_POSITIONALS, shellStatus } from "./render.js";

export class ShellSignalCommand extends PyroCommand {
  static override paths = [["workspace", "shell", "signal"]];

  static override usage = Command.Usage({
    category: "Shells",
    description: "send a signal to a shell's foreground job",
    details: `
      Sends \`--signal\` (INT, the default and what Ctrl-C sends; TERM; HUP; KILL) to the job in the shell's foreground. After INT the shell is back at its prompt.
    `,
    examples: [["Interrupt a hanging command", "$0 workspace shell signal repro-fix $SH"]],
  });

  workspace = Option.String({ name: "WS" });
  shell = Option.String({ name: "SHELL" });
  signal = Option.String("--signal", { description: "INT, TERM, HUP or KILL (default INT)" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(
      ShellSignalParams,
      { workspace: this.workspace, shell_id: this.shell, signal: this.signal?.toUpperCase().replace(/^SIG/, "") },
      SHELL_POSITIONALS,
    );
    const info = await (await this.context.manager()).shells.signal(params);
    out.result(info, {});
    out.status(shellStatus(info));
    return undefined;
  }
}
