// Owns `pyro workspace service list`: every service of a workspace.
import { Command, Option } from "clipanion";
import { WorkspaceRefParams } from "../../../../contract/workspace.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags } from "../../../flags.js";
import type { Output } from "../../../output.js";
import { SERVICE_POSITIONALS, serviceRows } from "./render.js";

export class ServiceListCommand extends PyroCommand {
  static override paths = [["workspace", "service", "list"]];

  static override usage = Command.Usage({
    category: "Services",
    description: "list a workspace's services",
    details: "Lists the services started in `WS` with their state, pid, exit code and published ports.",
    examples: [["List services", "$0 workspace service list repro-fix"]],
  });

  workspace = Option.String({ name: "WS" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(WorkspaceRefParams, { workspace: this.workspace }, SERVICE_POSITIONALS);
    const list = await (await this.context.manager()).services.list(params);
    out.result(list, { stdout: serviceRows(list) });
    out.status({ workspace_id: list.workspace_id, count: list.count, running: list.running_count });
    return undefined;
  }
}
