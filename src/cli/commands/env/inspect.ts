// Owns `pyro env inspect`: one environment's catalog entry and local build.
import { Command, Option } from "clipanion";
import { EnvironmentParams } from "../../../sdk/params.js";
import { PyroCommand } from "../../base.js";
import { parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import { describeInstall } from "./render.js";

export class EnvInspectCommand extends PyroCommand {
  static override paths = [["env", "inspect"]];

  static override usage = Command.Usage({
    category: "Environments",
    description: "show one environment and its local build",
    details: `
      Shows \`ENV\`'s catalog entry (description, version, packages) and, when it is installed, where it lives, when it was built, its size and digests, and whether its guest agent matches this pyro.
    `,
    examples: [
      ["Inspect the default environment", "$0 env inspect debian:12"],
      ["As JSON", "$0 env inspect debian:12 --json"],
    ],
  });

  environment = Option.String({ name: "ENV" });

  protected async perform(out: Output): Promise<undefined> {
    const { environment } = parseFlags(EnvironmentParams, { environment: this.environment }, { environment: "ENV" });
    const result = await (await this.context.manager()).inspectEnvironment(environment);
    out.result(result, { stdout: describeInstall(result) });
    out.status({ environment: result.name, installed: result.installed, agent_current: result.agent_current });
    return undefined;
  }
}
