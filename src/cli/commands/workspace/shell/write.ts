// Owns `pyro workspace shell write`: typing into a shell.
import { Command, Option } from "clipanion";
import { ShellWriteParams } from "../../../../contract/interactive.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags } from "../../../flags.js";
import type { Output } from "../../../output.js";
import { SHELL_POSITIONALS } from "./render.js";

export class ShellWriteCommand extends PyroCommand {
  static override paths = [["workspace", "shell", "write"]];

  static override usage = Command.Usage({
    category: "Shells",
    description: "type into a shell",
    details: `
      Types \`--input TEXT\` into the shell followed by Enter (\`--no-newline\` leaves Enter out, for keys sent to a full-screen program). Read the result with \`pyro workspace shell read\`.
    `,
    examples: [
      ["Run a command in the shell", "$0 workspace shell write repro-fix $SH --input 'make test'"],
      ["Leave vi", "$0 workspace shell write repro-fix $SH --input $'\\e:q!' "],
    ],
  });

  workspace = Option.String({ name: "WS" });
  shell = Option.String({ name: "SHELL" });
  input = Option.String("--input", { required: true, description: "Text to type" });
  noNewline = Option.Boolean("--no-newline", false, { description: "Do not press Enter after the input" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(
      ShellWriteParams,
      { workspace: this.workspace, shell_id: this.shell, input: this.input, append_newline: !this.noNewline },
      SHELL_POSITIONALS,
    );
    const result = await (await this.context.manager()).shells.write(params);
    out.result(result, {});
    out.status({ shell_id: result.shell_id, bytes_written: result.bytes_written });
    return undefined;
  }
}
