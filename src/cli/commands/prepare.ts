// Owns `pyro prepare`: warming an environment's daily loop before the first real task needs it.
import { Command, Option } from "clipanion";
import { DEFAULTS } from "../../contract/defaults.js";
import { PrepareParams } from "../../contract/schemas.js";
import { PyroCommand } from "../base.js";
import { parseFlags } from "../flags.js";
import type { Output } from "../output.js";
import { table } from "../table.js";

export class PrepareCommand extends PyroCommand {
  static override paths = [["prepare"]];

  static override usage = Command.Usage({
    category: "Host",
    description: "warm an environment's daily loop",
    details: `
      Makes the first real task fast: builds \`ENV\` (default \`${DEFAULTS.environment}\`) if needed, then creates a workspace, runs a command in it, resets it and deletes it, timing each step. \`pyro doctor --environment ENV\` then reports the loop warm until the environment is rebuilt or pyro changes.
    `,
    examples: [
      ["Warm the default environment", "$0 prepare"],
      ["Warm the build environment", "$0 prepare debian:12-build"],
    ],
  });

  environment = Option.String({ name: "ENV", required: false });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(PrepareParams, { environment: this.environment }, { environment: "ENV" });
    const result = await (await this.context.manager()).prepare(params, { progress: out.progress() });
    out.result(result, {
      stdout:
        table(result.steps.map((s) => [`${s.step}:`, `${s.duration_ms} ms`])) +
        `${result.environment} is ${result.daily_loop.state} on ${result.engine}\n`,
    });
    out.status({
      environment: result.environment,
      engine: result.engine,
      total_ms: result.total_ms,
      state: result.daily_loop.state,
    });
    return undefined;
  }
}
