// Owns `pyro workspace status`: one workspace's record and whether its sandbox runs.
import { Command, Option } from "clipanion";
import { WorkspaceRefParams } from "../../../contract/workspace.js";
import { PyroCommand } from "../../base.js";
import { parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import { describeWorkspace, POSITIONALS } from "./render.js";

export class WorkspaceStatusCommand extends PyroCommand {
  static override paths = [["workspace", "status"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "show one workspace",
    details: `
      Shows the workspace \`WS\` (its id or name): state, environment and engine, resources, seed, labels, and when it was last active and will expire. Reading the status never counts as activity.
    `,
    examples: [
      ["Show a workspace by name", "$0 workspace status repro-fix"],
      ["As JSON", "$0 workspace status repro-fix --json"],
    ],
  });

  workspace = Option.String({ name: "WS" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(WorkspaceRefParams, { workspace: this.workspace }, POSITIONALS);
    const info = await (await this.context.manager()).workspaces.status(params);
    out.result(info, { stdout: describeWorkspace(info) });
    out.status({ workspace_id: info.workspace_id, state: info.state, expires_at: info.expires_at });
    return undefined;
  }
}
