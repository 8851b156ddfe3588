// Owns `pyro workspace disk list`: a stopped workspace's files, read on the host.
import { Command, Option } from "clipanion";
import { FileListParams } from "../../../../contract/workspace.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags } from "../../../flags.js";
import type { Output } from "../../../output.js";
import { POSITIONALS, showFileList } from "../render.js";

export class DiskListCommand extends PyroCommand {
  static override paths = [["workspace", "disk", "list"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "list a stopped workspace's files",
    details:
      "Lists `PATH` (default `/workspace`) of the stopped workspace `WS` without starting a sandbox; `--recursive` descends.",
    examples: [["List a stopped workspace", "$0 workspace disk list repro-fix --recursive"]],
  });

  workspace = Option.String({ name: "WS" });
  guestPath = Option.String({ name: "PATH", required: false });
  recursive = Option.Boolean("--recursive", false, { description: "Descend into subdirectories" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(
      FileListParams,
      { workspace: this.workspace, path: this.guestPath, recursive: this.recursive },
      POSITIONALS,
    );
    const result = await (await this.context.manager()).workspaces.diskList(params);
    showFileList(out, result);
    return undefined;
  }
}
