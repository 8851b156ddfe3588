// Owns `pyro workspace logs`: the workspace's command history.
import { Command, Option } from "clipanion";
import { WorkspaceRefParams } from "../../../contract/workspace.js";
import { PyroCommand } from "../../base.js";
import { parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import { commandRows, POSITIONALS } from "./render.js";

export class WorkspaceLogsCommand extends PyroCommand {
  static override paths = [["workspace", "logs"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "show the commands run in a workspace",
    details: `
      Lists every command \`pyro workspace exec\` ran in \`WS\`, in order: its sequence number, exit code, duration, working directory and command line. The output itself is not kept; \`--json\` adds when each started and how many bytes it printed.
    `,
    examples: [
      ["Show the history", "$0 workspace logs repro-fix"],
      ["As JSON", "$0 workspace logs repro-fix --json"],
    ],
  });

  workspace = Option.String({ name: "WS" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(WorkspaceRefParams, { workspace: this.workspace }, POSITIONALS);
    const logs = await (await this.context.manager()).workspaces.logs(params);
    out.result(logs, { stdout: commandRows(logs.commands) });
    out.status({
      workspace_id: logs.workspace_id,
      count: logs.count,
      failed: logs.commands.filter((c) => c.exit_code !== 0).length,
    });
    return undefined;
  }
}
