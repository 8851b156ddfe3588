// Owns `pyro workspace snapshot list`: a workspace's snapshots, oldest first.
import { Command, Option } from "clipanion";
import { WorkspaceRefParams } from "../../../../contract/workspace.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags } from "../../../flags.js";
import type { Output } from "../../../output.js";
import { POSITIONALS, snapshotRows } from "../render.js";

export class SnapshotListCommand extends PyroCommand {
  static override paths = [["workspace", "snapshot", "list"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "list a workspace's snapshots",
    details: "Lists the snapshots of `WS`, oldest first, with their size and time.",
    examples: [["List snapshots", "$0 workspace snapshot list repro-fix"]],
  });

  workspace = Option.String({ name: "WS" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(WorkspaceRefParams, { workspace: this.workspace }, POSITIONALS);
    const list = await (await this.context.manager()).workspaces.snapshotList(params);
    out.result(list, {
      stdout:
        list.count === 0
          ? "no snapshots; take one with pyro workspace snapshot create WS NAME\n"
          : snapshotRows(list.snapshots),
    });
    out.status({ workspace_id: list.workspace_id, count: list.count });
    return undefined;
  }
}
