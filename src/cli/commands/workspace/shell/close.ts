// Owns `pyro workspace shell close`: ending a shell and every process it started.
import { Command, Option } from "clipanion";
import { ShellRefParams } from "../../../../contract/interactive.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags } from "../../../flags.js";
import type { Output } from "../../../output.js";
import { SHELL_POSITIONALS, shellStatus } from "./render.js";

export class ShellCloseCommand extends PyroCommand {
  static override paths = [["workspace", "shell", "close"]];

  static override usage = Command.Usage({
    category: "Shells",
    description: "close a shell",
    details: `
      Ends the shell and every process it started, background jobs included. Closing a closed shell does nothing.
    `,
    examples: [["Close a shell", "$0 workspace shell close repro-fix $SH"]],
  });

  workspace = Option.String({ name: "WS" });
  shell = Option.String({ name: "SHELL" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(ShellRefParams, { workspace: this.workspace, shell_id: this.shell }, SHELL_POSITIONALS);
    const info = await (await this.context.manager()).shells.close(params);
    out.result(info, {});
    out.status(shellStatus(info));
    return undefined;
  }
}
