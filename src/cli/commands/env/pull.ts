// Owns `pyro env pull`: building an environment into the local cache.
import { Command, Option } from "clipanion";
import { EnvironmentPullParams } from "../../../sdk/params.js";
import { PyroCommand } from "../../base.js";
import { parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import { describeInstall } from "./render.js";

export class EnvPullCommand extends PyroCommand {
  static override paths = [["env", "pull"]];

  static override usage = Command.Usage({
    category: "Environments",
    description: "build an environment into the local cache",
    details: `
      Builds \`ENV\` from Debian's package archive (through the host's apt sources) and injects pyro's guest agent, so that sandboxes start from it without further downloads. Does nothing when a valid copy is already installed, unless \`--force\` is given. The first pull takes a few tens of seconds; progress is shown on a terminal.
    `,
    examples: [
      ["Build the default environment", "$0 env pull debian:12"],
      ["Rebuild it from scratch", "$0 env pull debian:12 --force"],
    ],
  });

  environment = Option.String({ name: "ENV" });
  force = Option.Boolean("--force", false, { description: "Rebuild even when a valid copy is installed" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(
      EnvironmentPullParams,
      { environment: this.environment, force: this.force },
      { environment: "ENV" },
    );
    const manager = await this.context.manager();
    const result = await manager.pullEnvironment(params.environment, { force: params.force, progress: out.progress() });
    const headline = result.pulled
      ? `${result.name} installed in ${(result.duration_ms / 1000).toFixed(1)} s\n`
      : `${result.name} was already installed\n`;
    out.result(result, { stdout: headline + describeInstall(result) });
    out.status({ environment: result.name, pulled: result.pulled, duration_ms: result.duration_ms });
    return undefined;
  }
}
