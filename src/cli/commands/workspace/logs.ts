// Owns `pyro workspace logs`: the workspace's command history, or its network log.
import { Command, Option } from "clipanion";
import * as t from "typanion";
import { WorkspaceLogsParams } from "../../../contract/workspace.js";
import { PyroCommand } from "../../base.js";
import { parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import { commandRows, networkRows, POSITIONALS } from "./render.js";

export class WorkspaceLogsCommand extends PyroCommand {
  static override paths = [["workspace", "logs"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "show the commands run in a workspace",
    details: `
      Lists every command \`pyro workspace exec\` ran in \`WS\`, in order: its sequence number, exit code, duration, working directory and command line. The output itself is not kept; \`--json\` adds when each started and how many bytes it printed.

      \`--network\` shows instead what the allowlist gateway decided (network policy allowlist): each lookup and connection, allowed or denied, with the rule or reason, and bytes and duration once an allowed connection closed; the newest \`--limit\` entries (default 200).
    `,
    examples: [
      ["Show the history", "$0 workspace logs repro-fix"],
      ["As JSON", "$0 workspace logs repro-fix --json"],
      ["What the network allowed and refused", "$0 workspace logs repro-fix --network"],
    ],
  });

  workspace = Option.String({ name: "WS" });
  network = Option.Boolean("--network", false, { description: "Show the allowlist's network log instead" });
  limit = Option.String("--limit", {
    validator: t.isNumber(),
    description: "Network log: newest entries (default 200)",
  });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(
      WorkspaceLogsParams,
      { workspace: this.workspace, network: this.network, limit: this.limit },
      { ...POSITIONALS, limit: "--limit" },
    );
    const logs = await (await this.context.manager()).workspaces.logs(params);
    if (logs.network) {
      out.result(logs, { stdout: networkRows(logs.network) });
      out.status({
        workspace_id: logs.workspace_id,
        count: logs.count,
        denied: logs.network.filter((e) => e.decision === "denied").length,
      });
      return undefined;
    }
    out.result(logs, { stdout: commandRows(logs.commands) });
    out.status({
      workspace_id: logs.workspace_id,
      count: logs.count,
      failed: logs.commands.filter((c) => c.exit_code !== 0).length,
    });
    return undefined;
  }
}
