// Owns `pyro workspace service stop`: TERM, then KILL after a grace period.
import { Command, Option } from "clipanion";
import * as t from "typanion";
import { ServiceStopParams } from "../../../../contract/interactive.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags } from "../../../flags.js";
import type { Output } from "../../../output.js";
import { describeService, SERVICE_POSITIONALS, serviceStatus } from "./render.js";

export class ServiceStopCommand extends PyroCommand {
  static override paths = [["workspace", "service", "stop"]];

  static override usage = Command.Usage({
    category: "Services",
    description: "stop a service",
    details: `
      Sends TERM to the service and everything it started, then KILL after \`--grace-seconds\` (default 5). Its published ports close. Stopping an ended service does nothing.
    `,
    examples: [["Stop a service", "$0 workspace service stop repro-fix web"]],
  });

  workspace = Option.String({ name: "WS" });
  name = Option.String({ name: "NAME" });
  graceSeconds = Option.String("--grace-seconds", {
    validator: t.isNumber(),
    description: "Seconds between TERM and KILL (default 5)",
  });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(
      ServiceStopParams,
      { workspace: this.workspace, service_name: this.name, grace_seconds: this.graceSeconds },
      SERVICE_POSITIONALS,
    );
    const info = await (await this.context.manager()).services.stop(params);
    out.result(info, { stdout: describeService(info) });
    out.status(serviceStatus(info));
    return undefined;
  }
}
