// Owns `pyro workspace start`: starting a stopped workspace's sandbox again on its kept files.
import { Command, Option } from "clipanion";
import { WorkspaceRefParams } from "../../../contract/workspace.js";
import { PyroCommand } from "../../base.js";
import { parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import { describeWorkspace, POSITIONALS } from "./render.js";

export class WorkspaceStartCommand extends PyroCommand {
  static override paths = [["workspace", "start"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "start a stopped workspace again",
    details: `
      Starts a new sandbox for \`WS\` on the \`/workspace\` it kept; processes that ran before it stopped do not come back. Starting a running workspace changes nothing.
    `,
    examples: [["Start a workspace", "$0 workspace start repro-fix"]],
  });

  workspace = Option.String({ name: "WS" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(WorkspaceRefParams, { workspace: this.workspace }, POSITIONALS);
    const info = await (await this.context.manager()).workspaces.start(params);
    out.result(info, { stdout: describeWorkspace(info) });
    out.status({ workspace_id: info.workspace_id, state: info.state });
    return undefined;
  }
}
