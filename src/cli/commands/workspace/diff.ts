// Owns `pyro workspace diff`: what changed in /workspace since create, as a patch.
import { Command, Option } from "clipanion";
import { WorkspaceRefParams } from "../../../contract/workspace.js";
import { PyroCommand } from "../../base.js";
import { parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import { POSITIONALS } from "./render.js";

export class WorkspaceDiffCommand extends PyroCommand {
  static override paths = [["workspace", "diff"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "show what changed in a workspace since create",
    details: `
      Compares \`/workspace\` in \`WS\` with the baseline taken when it was created and prints a unified diff of the text changes on stdout, ready for \`git apply\` or \`patch -p1\`, then a summary line on stderr. Binary files and changed directories are not in the patch; they are listed on stderr. Nothing is printed on stdout when nothing changed.
    `,
    examples: [
      ["Show the changes", "$0 workspace diff repro-fix"],
      ["Apply them to the host checkout", "$0 workspace diff repro-fix | git -C ./repo apply"],
      ["Just the changed paths", "$0 workspace diff repro-fix --json | jq -r '.files[].path'"],
    ],
  });

  workspace = Option.String({ name: "WS" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(WorkspaceRefParams, { workspace: this.workspace }, POSITIONALS);
    const diff = await (await this.context.manager()).workspaces.diff(params);
    const left = diff.files.filter((f) => f.binary).map((f) => `not in the patch (binary): ${f.status} ${f.path}\n`);
    out.result(diff, { stdout: diff.patch, stderr: left.join("") });
    const { summary } = diff;
    out.status({
      workspace_id: diff.workspace_id,
      changed: diff.changed,
      total: summary.total,
      added: summary.added,
      modified: summary.modified,
      deleted: summary.deleted,
      type_changed: summary.type_changed,
      binary: summary.binary,
      patch_truncated: diff.patch_truncated || undefined,
    });
    return undefined;
  }
}
