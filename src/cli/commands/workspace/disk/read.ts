// Owns `pyro workspace disk read`: a file of a stopped workspace, read on the host.
import { Command, Option } from "clipanion";
import * as t from "typanion";
import { DEFAULTS } from "../../../../contract/defaults.js";
import { FileReadParams } from "../../../../contract/workspace.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags } from "../../../flags.js";
import type { Output } from "../../../output.js";
import { POSITIONALS, showFileRead } from "../render.js";

export class DiskReadCommand extends PyroCommand {
  static override paths = [["workspace", "disk", "read"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "print a file of a stopped workspace",
    details: `Prints \`PATH\` of the stopped workspace \`WS\` without starting a sandbox, up to \`--max-bytes\` (default ${DEFAULTS.readMaxBytes}).`,
    examples: [["Read a file of a stopped workspace", "$0 workspace disk read repro-fix src/main.c"]],
  });

  workspace = Option.String({ name: "WS" });
  guestPath = Option.String({ name: "PATH" });
  maxBytes = Option.String("--max-bytes", {
    validator: t.isNumber(),
    description: `Read at most this many bytes (default ${DEFAULTS.readMaxBytes})`,
  });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(
      FileReadParams,
      { workspace: this.workspace, path: this.guestPath, max_bytes: this.maxBytes },
      POSITIONALS,
    );
    const result = await (await this.context.manager()).workspaces.diskRead(params);
    showFileRead(out, result);
    return undefined;
  }
}
