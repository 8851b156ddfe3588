// Owns `pyro workspace snapshot delete`.
import { Command, Option } from "clipanion";
import { SnapshotParams } from "../../../../contract/workspace.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags } from "../../../flags.js";
import type { Output } from "../../../output.js";

export class SnapshotDeleteCommand extends PyroCommand {
  static override paths = [["workspace", "snapshot", "delete"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "delete a snapshot",
    details: "Deletes the snapshot `NAME` of `WS`; other snapshots and the workspace are not affected.",
    examples: [["Delete a snapshot", "$0 workspace snapshot delete repro-fix before-upgrade"]],
  });

  workspace = Option.String({ name: "WS" });
  name = Option.String({ name: "NAME" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(
      SnapshotParams,
      { workspace: this.workspace, snapshot_name: this.name },
      { workspace: "WS", snapshot_name: "NAME" },
    );
    const result = await (await this.context.manager()).workspaces.snapshotDelete(params);
    out.result(result, {});
    out.status({ workspace_id: result.workspace_id, snapshot: result.snapshot_name, deleted: result.deleted });
    return undefined;
  }
}
