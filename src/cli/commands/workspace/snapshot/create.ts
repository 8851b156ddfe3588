// Owns `pyro workspace snapshot create`: a named checkpoint of /workspace.
import { Command, Option } from "clipanion";
import { SnapshotParams } from "../../../../contract/workspace.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags } from "../../../flags.js";
import type { Output } from "../../../output.js";
import { snapshotRows } from "../render.js";

export class SnapshotCreateCommand extends PyroCommand {
  static override paths = [["workspace", "snapshot", "create"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "save /workspace as a named snapshot",
    details: `
      Saves the files of \`/workspace\` in \`WS\` as the snapshot \`NAME\` (a running workspace is paused for the moment it takes). Files unchanged since another snapshot or the baseline are shared with it, not copied. \`pyro workspace reset WS --snapshot NAME\` goes back to it.
    `,
    examples: [["Checkpoint before a risky change", "$0 workspace snapshot create repro-fix before-upgrade"]],
  });

  workspace = Option.String({ name: "WS" });
  name = Option.String({ name: "NAME" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(
      SnapshotParams,
      { workspace: this.workspace, snapshot_name: this.name },
      { workspace: "WS", snapshot_name: "NAME" },
    );
    const info = await (await this.context.manager()).workspaces.snapshotCreate(params);
    out.result(info, { stdout: snapshotRows([info]) });
    out.status({ workspace_id: info.workspace_id, snapshot: info.snapshot_name, size_bytes: info.size_bytes });
    return undefined;
  }
}
