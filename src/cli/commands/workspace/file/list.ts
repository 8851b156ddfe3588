// Owns `pyro workspace file list`: the entries of a directory inside a workspace.
import { Command, Option } from "clipanion";
import { DEFAULTS } from "../../../../contract/defaults.js";
import { FileListParams } from "../../../../contract/workspace.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags } from "../../../flags.js";
import type { Output } from "../../../output.js";
import { POSITIONALS, showFileList } from "../render.js";

export class WorkspaceFileListCommand extends PyroCommand {
  static override paths = [["workspace", "file", "list"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "list files in a workspace",
    details: `
      Lists \`PATH\` (default \`${DEFAULTS.guestWorkspace}\`; relative paths start there) in \`WS\`: one line per entry with its type (file, directory or symlink), size in bytes and, for a symlink, its target. \`--recursive\` descends into subdirectories.
    `,
    examples: [
      ["List the top of /workspace", "$0 workspace file list repro-fix"],
      ["List a subdirectory recursively", "$0 workspace file list repro-fix src --recursive"],
    ],
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
    const result = await (await this.context.manager()).workspaces.listFiles(params);
    showFileList(out, result);
    return undefined;
  }
}
