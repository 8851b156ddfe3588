// Owns `pyro workspace stop`: stopping a workspace's sandbox while keeping its files.
import { Command, Option } from "clipanion";
import { WorkspaceRefParams } from "../../../contract/workspace.js";
import { PyroCommand } from "../../base.js";
import { parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import { describeWorkspace, POSITIONALS } from "./render.js";

export class WorkspaceStopCommand extends PyroCommand {
  static override paths = [["workspace", "stop"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "stop a workspace's sandbox, keeping its files",
    details: `
      Stops the sandbox of \`WS\`: its processes end and it uses no memory or CPU, while \`/workspace\`, the baseline and the history stay on disk. \`pyro workspace start\` brings it back.
    `,
    examples: [["Stop a workspace", "$0 workspace stop repro-fix"]],
  });

  workspace = Option.String({ name: "WS" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(WorkspaceRefParams, { workspace: this.workspace }, POSITIONALS);
    const info = await (await this.context.manager()).workspaces.stop(params);
    out.result(info, { stdout: describeWorkspace(info) });
    out.status({ workspace_id: info.workspace_id, state: info.state });
    return undefined;
  }
}
