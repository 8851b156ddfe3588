// Owns `pyro workspace reset`: putting /workspace back to its baseline, or a named snapshot, in a fresh sandbox.
import { Command, Option } from "clipanion";
import { ResetParams } from "../../../contract/workspace.js";
import { PyroCommand } from "../../base.js";
import { parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import { POSITIONALS } from "./render.js";

export class WorkspaceResetCommand extends PyroCommand {
  static override paths = [["workspace", "reset"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "put a workspace back to its state at create, or at a snapshot",
    details: `
      Discards every change made to \`WS\` since it was created (or since \`--snapshot NAME\` was taken with \`pyro workspace snapshot create\`): its sandbox restarts (running processes end) and \`/workspace\` holds that state again. The name, labels and command history stay. \`pyro workspace snapshot list WS\` shows the snapshots; \`baseline\` is the one taken at create.
    `,
    examples: [
      ["Start over", "$0 workspace reset repro-fix"],
      ["Go back to a snapshot", "$0 workspace reset repro-fix --snapshot before-refactor"],
    ],
  });

  workspace = Option.String({ name: "WS" });
  snapshot = Option.String("--snapshot", { description: "The snapshot to reset to (default baseline)" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(ResetParams, { workspace: this.workspace, snapshot: this.snapshot }, POSITIONALS);
    const result = await (await this.context.manager()).workspaces.reset(params);
    out.result(result, { stdout: `reset ${result.workspace_id} to ${result.snapshot}\n` });
    out.status({ workspace_id: result.workspace_id, snapshot: result.snapshot, reset_count: result.reset_count });
    return undefined;
  }
}
