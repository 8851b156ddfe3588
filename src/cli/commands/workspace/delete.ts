// Owns `pyro workspace delete`: stopping a workspace and removing everything it kept.
import { Command, Option } from "clipanion";
import { WorkspaceRefParams } from "../../../contract/workspace.js";
import { PyroCommand } from "../../base.js";
import { parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import { POSITIONALS } from "./render.js";

export class WorkspaceDeleteCommand extends PyroCommand {
  static override paths = [["workspace", "delete"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "stop a workspace and delete its files and history",
    details: `
      Stops the sandbox of \`WS\` and removes its \`/workspace\`, baseline and command history from the host. Export anything worth keeping first. Deleting a workspace that is already gone succeeds and says so.
    `,
    examples: [
      ["Delete a workspace", "$0 workspace delete repro-fix"],
      [
        "Delete every workspace",
        "$0 workspace list --json | jq -r '.workspaces[].workspace_id' | xargs -n1 $0 workspace delete",
      ],
    ],
  });

  workspace = Option.String({ name: "WS" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(WorkspaceRefParams, { workspace: this.workspace }, POSITIONALS);
    const result = await (await this.context.manager()).workspaces.delete(params);
    const text = result.deleted ? `deleted ${result.workspace_id}\n` : `${result.workspace_id} was already gone\n`;
    out.result(result, { stdout: text });
    out.status({ workspace_id: result.workspace_id, deleted: result.deleted });
    return undefined;
  }
}
