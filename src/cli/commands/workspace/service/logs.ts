// Owns `pyro workspace service logs`: a service's stdout and stderr.
import { Command, Option, UsageError } from "clipanion";
import * as t from "typanion";
import { ServiceLogsParams } from "../../../../contract/interactive.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags } from "../../../flags.js";
import type { Output } from "../../../output.js";
import { SERVICE_POSITIONALS } from "./render.js";

export class ServiceLogsCommand extends PyroCommand {
  static override paths = [["workspace", "service", "logs"]];

  static override usage = Command.Usage({
    category: "Services",
    description: "print a service's logs",
    details: `
      Prints the service's stdout on stdout and its stderr on stderr: the last \`--tail-lines\` lines of each (default 200), or everything kept (the last 1 MiB of each) with \`--all\`.
    `,
    examples: [
      ["The last 50 lines", "$0 workspace service logs repro-fix web --tail-lines 50"],
      ["Everything kept", "$0 workspace service logs repro-fix web --all"],
    ],
  });

  workspace = Option.String({ name: "WS" });
  name = Option.String({ name: "NAME" });
  tailLines = Option.String("--tail-lines", {
    validator: t.isNumber(),
    description: "Lines of each stream (default 200)",
  });
  all = Option.Boolean("--all", false, { description: "Everything kept instead of a tail" });

  protected async perform(out: Output): Promise<undefined> {
    if (this.all && this.tailLines !== undefined) {
      throw new UsageError("give --tail-lines or --all, not both");
    }
    const params = parseFlags(
      ServiceLogsParams,
      { workspace: this.workspace, service_name: this.name, tail_lines: this.tailLines, all: this.all },
      SERVICE_POSITIONALS,
    );
    const logs = await (await this.context.manager()).services.logs(params);
    out.result(logs, { stdout: logs.stdout, stderr: logs.stderr });
    out.status({ service: logs.service_name, truncated: logs.truncated || undefined });
    return undefined;
  }
}
