// Owns `pyro workspace service status`: one service's state.
import { Command, Option } from "clipanion";
import { ServiceRefParams } from "../../../../contract/interactive.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags } from "../../../flags.js";
import type { Output } from "../../../output.js";
import { describeService, SERVICE_POSITIONALS, serviceStatus } from "./render.js";

export class ServiceStatusCommand extends PyroCommand {
  static override paths = [["workspace", "service", "status"]];

  static override usage = Command.Usage({
    category: "Services",
    description: "show one service",
    details:
      "Shows the service `NAME` in `WS`: state, pid, when it became ready, exit code, failure reason and published ports.",
    examples: [["Show a service", "$0 workspace service status repro-fix web"]],
  });

  workspace = Option.String({ name: "WS" });
  name = Option.String({ name: "NAME" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(
      ServiceRefParams,
      { workspace: this.workspace, service_name: this.name },
      SERVICE_POSITIONALS,
    );
    const info = await (await this.context.manager()).services.status(params);
    out.result(info, { stdout: describeService(info) });
    out.status(serviceStatus(info));
    return undefined;
  }
}
