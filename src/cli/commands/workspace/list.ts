// Owns `pyro workspace list`: every workspace, most recently active first.
import { Command } from "clipanion";
import { PyroCommand } from "../../base.js";
import type { Output } from "../../output.js";
import { workspaceRows } from "./render.js";

export class WorkspaceListCommand extends PyroCommand {
  static override paths = [["workspace", "list"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "list workspaces, most recently active first",
    details: `
      Shows each workspace's id, name, state (running, stopped, expired or failed), environment, last activity and labels. Listing never counts as activity.
    `,
    examples: [
      ["List workspaces", "$0 workspace list"],
      ["As JSON", "$0 workspace list --json"],
    ],
  });

  protected async perform(out: Output): Promise<undefined> {
    const list = await (await this.context.manager()).workspaces.list();
    const damaged = (list.damaged ?? []).map(
      (d) => `damaged: ${d.workspace_id}: ${d.problem}; its files are kept (pyro doctor)\n`,
    );
    out.result(list, { stdout: workspaceRows(list) + damaged.join("") });
    out.status({ count: list.count, running: list.workspaces.filter((w) => w.state === "running").length });
    return undefined;
  }
}
