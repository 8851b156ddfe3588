// Owns `pyro env prune`: removing cached builds nothing uses any more.
import { Command } from "clipanion";
import { PyroCommand } from "../../base.js";
import type { Output } from "../../output.js";

export class EnvPruneCommand extends PyroCommand {
  static override paths = [["env", "prune"]];

  static override usage = Command.Usage({
    category: "Environments",
    description: "remove cached environment builds that are no longer used",
    details: `
      Deletes builds of old catalog versions and unfinished builds from the environment cache. Installed environments of the current catalog are kept.
    `,
    examples: [["Free cache space", "$0 env prune"]],
  });

  protected async perform(out: Output): Promise<undefined> {
    const result = await (await this.context.manager()).pruneEnvironments();
    const text =
      result.removed.length === 0 ? "nothing to remove\n" : result.removed.map((name) => `removed ${name}\n`).join("");
    out.result(result, { stdout: text });
    out.status({ removed: result.removed.length, freed_bytes: result.freed_bytes });
    return undefined;
  }
}
