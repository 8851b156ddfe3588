// Owns `pyro workspace shell open`: an interactive PTY shell that outlives this process.
import { Command, Option } from "clipanion";
import * as t from "typanion";
import { DEFAULTS } from "../../../../contract/defaults.js";
import { ShellOpenParams } from "../../../../contract/interactive.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags, secretEnvFlags } from "../../../flags.js";
import type { Output } from "../../../output.js";
import { POSITIONALS } from "../render.js";
import { shellStatus } from "./render.js";

export class ShellOpenCommand extends PyroCommand {
  static override paths = [["workspace", "shell", "open"]];

  static override usage = Command.Usage({
    category: "Shells",
    description: "open an interactive shell in a workspace",
    details: `
      Starts bash on a terminal (PTY) of \`--cols\`×\`--rows\` (default ${DEFAULTS.shellCols}×${DEFAULTS.shellRows}) in \`--cwd\` (default \`/workspace\`) and prints its id. The shell keeps running after this command returns: type into it with \`pyro workspace shell write\`, read it with \`pyro workspace shell read\`, and end it with \`pyro workspace shell close\` (stopping the workspace ends it too).
    `,
    examples: [
      ["Open a shell and keep its id", "SH=$($0 workspace shell open repro-fix --id-only)"],
      ["A wide terminal in a subdirectory", "$0 workspace shell open repro-fix --cwd src --cols 200 --rows 50"],
    ],
  });

  workspace = Option.String({ name: "WS" });
  cwd = Option.String("--cwd", { description: "Working directory inside /workspace (default /workspace)" });
  cols = Option.String("--cols", {
    validator: t.isNumber(),
    description: `Terminal width (default ${DEFAULTS.shellCols})`,
  });
  rows = Option.String("--rows", {
    validator: t.isNumber(),
    description: `Terminal height (default ${DEFAULTS.shellRows})`,
  });
  secretEnv = Option.Array("--secret-env", {
    description: "Expose a workspace secret as an environment variable: NAME or NAME=ENV_VAR (repeatable)",
  });
  idOnly = Option.Boolean("--id-only", false, { description: "Print only the new shell's id" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(
      ShellOpenParams,
      {
        workspace: this.workspace,
        cwd: this.cwd,
        cols: this.cols,
        rows: this.rows,
        secret_env: secretEnvFlags(this.secretEnv),
      },
      { ...POSITIONALS, secret_env: "--secret-env" },
    );
    const info = await (await this.context.manager()).shells.open(params);
    out.result(info, { stdout: `${info.shell_id}\n` });
    if (!this.idOnly) out.status(shellStatus(info));
    return undefined;
  }
}
