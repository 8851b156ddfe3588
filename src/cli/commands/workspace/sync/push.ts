// Owns `pyro workspace sync push`: copying a host directory or archive into a workspace.
import { Command, Option } from "clipanion";
import { DEFAULTS } from "../../../../contract/defaults.js";
import { SyncPushParams } from "../../../../contract/workspace.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags } from "../../../flags.js";
import type { Output } from "../../../output.js";
import { POSITIONALS } from "../render.js";

export class WorkspaceSyncPushCommand extends PyroCommand {
  static override paths = [["workspace", "sync", "push"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "copy a host directory or archive into a workspace",
    details: `
      Copies \`SOURCE_PATH\` (a host directory, or a .tar, .tar.gz or .tgz archive) into \`WS\` at \`--dest\` (default \`${DEFAULTS.guestWorkspace}\`), overwriting files with the same paths and leaving the others alone. Symlinks that point outside the source are left out and listed. The baseline is not changed: the pushed files show up in \`pyro workspace diff\`.
    `,
    examples: [
      ["Push a local checkout's changes", "$0 workspace sync push repro-fix ./repo"],
      ["Unpack an archive into a subdirectory", "$0 workspace sync push repro-fix ./fixtures.tgz --dest fixtures"],
    ],
  });

  workspace = Option.String({ name: "WS" });
  sourcePath = Option.String({ name: "SOURCE_PATH" });
  dest = Option.String("--dest", { description: `Destination inside /workspace (default ${DEFAULTS.guestWorkspace})` });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(
      SyncPushParams,
      { workspace: this.workspace, source_path: this.sourcePath, dest: this.dest },
      POSITIONALS,
    );
    const result = await (await this.context.manager()).workspaces.syncPush(params);
    out.result(result, {
      stdout: `pushed ${result.entry_count} entries (${result.bytes_written} bytes) to ${result.dest}\n`,
      stderr: result.skipped.map((entry) => `skipped: ${entry}\n`).join(""),
    });
    out.status({
      workspace_id: result.workspace_id,
      dest: result.dest,
      entry_count: result.entry_count,
      bytes_written: result.bytes_written,
      skipped: result.skipped.length || undefined,
    });
    return undefined;
  }
}
