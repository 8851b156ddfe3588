// Owns `pyro workspace update`: renaming a workspace and changing its labels.
import { Command, Option, UsageError } from "clipanion";
import { WorkspaceUpdateParams } from "../../../contract/workspace.js";
import { PyroCommand } from "../../base.js";
import { keyValues, parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import { describeWorkspace, POSITIONALS } from "./render.js";

export class WorkspaceUpdateCommand extends PyroCommand {
  static override paths = [["workspace", "update"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "rename a workspace or change its labels",
    details: `
      Gives \`WS\` a new unique \`--name\`, sets labels with \`--label KEY=VALUE\` (merged into the existing ones) and removes them with \`--clear-label KEY\`; both may be repeated.
    `,
    examples: [
      ["Rename a workspace", "$0 workspace update ws-0123456789 --name repro-fix"],
      ["Set one label and remove another", "$0 workspace update repro-fix --label owner=codex --clear-label draft"],
    ],
  });

  workspace = Option.String({ name: "WS" });
  name = Option.String("--name", { description: "The new unique name" });
  labels = Option.Array("--label", { description: "KEY=VALUE label to set (repeatable)" });
  clearLabels = Option.Array("--clear-label", { description: "Label KEY to remove (repeatable)" });

  protected async perform(out: Output): Promise<undefined> {
    if (this.name === undefined && this.labels === undefined && this.clearLabels === undefined) {
      throw new UsageError("nothing to update: give --name, --label or --clear-label");
    }
    const params = parseFlags(
      WorkspaceUpdateParams,
      {
        workspace: this.workspace,
        name: this.name,
        labels: keyValues("--label", this.labels),
        clear_labels: this.clearLabels,
      },
      { ...POSITIONALS, labels: "--label", clear_labels: "--clear-label" },
    );
    const info = await (await this.context.manager()).workspaces.update(params);
    out.result(info, { stdout: describeWorkspace(info) });
    out.status({ workspace_id: info.workspace_id, name: info.name, labels: Object.keys(info.labels).length });
    return undefined;
  }
}
