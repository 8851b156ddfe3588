// Owns `pyro --version`.
import { Command } from "clipanion";
import { PYRO_VERSION } from "../../version.js";
import { PyroCommand } from "../base.js";
import type { Output } from "../output.js";

export class VersionCommand extends PyroCommand {
  static override paths = [["--version"]];

  static override usage = Command.Usage({
    category: "General",
    description: "print pyro's version",
    examples: [["Print the version", "$0 --version"]],
  });

  protected async perform(out: Output): Promise<undefined> {
    out.result({ version: PYRO_VERSION }, { stdout: `${PYRO_VERSION}\n` });
    return undefined;
  }
}
