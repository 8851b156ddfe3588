// Owns `pyro workspace patch apply`: applying a unified diff to a workspace, all files or none.
import { Command, Option } from "clipanion";
import { PatchApplyParams } from "../../../../contract/workspace.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags, textFrom } from "../../../flags.js";
import type { Output } from "../../../output.js";
import { table } from "../../../table.js";
import { POSITIONALS } from "../render.js";

export class WorkspacePatchApplyCommand extends PyroCommand {
  static override paths = [["workspace", "patch", "apply"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "apply a unified diff to a workspace",
    details: `
      Applies \`--patch\`, or the content of the host file \`--patch-file\` (\`-\` reads stdin), to \`/workspace\` in \`WS\`. The patch is a unified diff (\`git diff\` or \`diff -u\` output) with paths relative to \`/workspace\`; it may add, change and delete files. Every hunk is checked before anything is written, so either the whole patch applies or nothing changes.
    `,
    examples: [
      ["Apply a patch file", "$0 workspace patch apply repro-fix --patch-file ./fix.patch"],
      [
        "Apply the host checkout's uncommitted changes",
        "git -C ./repo diff | $0 workspace patch apply repro-fix --patch-file -",
      ],
    ],
  });

  workspace = Option.String({ name: "WS" });
  patch = Option.String("--patch", { description: "The unified diff" });
  patchFile = Option.String("--patch-file", { description: "Host file holding the unified diff (- for stdin)" });

  protected async perform(out: Output): Promise<undefined> {
    const patch = await textFrom(
      { text: ["--patch", this.patch], file: ["--patch-file", this.patchFile] },
      this.context.stdin,
    );
    const params = parseFlags(PatchApplyParams, { workspace: this.workspace, patch }, POSITIONALS);
    const result = await (await this.context.manager()).workspaces.applyPatch(params);
    const text = result.changed ? table(result.files.map((f) => [f.status, f.path])) : "nothing to change\n";
    out.result(result, { stdout: text });
    out.status({ workspace_id: result.workspace_id, changed: result.changed, files: result.files.length });
    return undefined;
  }
}
