// Owns `pyro workspace summary`: what happened in a workspace, in one screen.
import { Command, Option } from "clipanion";
import { WorkspaceRefParams } from "../../../contract/workspace.js";
import { PyroCommand } from "../../base.js";
import { parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import { describeSummary, POSITIONALS } from "./render.js";

export class WorkspaceSummaryCommand extends PyroCommand {
  static override paths = [["workspace", "summary"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "summarize a workspace's commands, changes and exports",
    details: `
      Shows how many commands ran in \`WS\` and how many failed (with the last few), which files changed since create, what was exported and how often it was reset. Changes are known only while the workspace runs.
    `,
    examples: [
      ["Summarize a workspace", "$0 workspace summary repro-fix"],
      ["As JSON", "$0 workspace summary repro-fix --json"],
    ],
  });

  workspace = Option.String({ name: "WS" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(WorkspaceRefParams, { workspace: this.workspace }, POSITIONALS);
    const summary = await (await this.context.manager()).workspaces.summary(params);
    out.result(summary, { stdout: describeSummary(summary) });
    out.status({
      workspace_id: summary.workspace_id,
      state: summary.state,
      commands: summary.commands.total,
      failed: summary.commands.failed,
      changed_files: summary.changes.total,
      exports: summary.exports.length,
      resets: summary.reset_count,
    });
    return undefined;
  }
}
