// Owns `pyro env list`: the environment catalog and what is installed.
import { Command } from "clipanion";
import { PyroCommand } from "../../base.js";
import type { Output } from "../../output.js";
import { table } from "../../table.js";

export class EnvListCommand extends PyroCommand {
  static override paths = [["env", "list"]];

  static override usage = Command.Usage({
    category: "Environments",
    description: "list the environments sandboxes can start from",
    details: `
      Shows every environment in pyro's catalog, whether it is built in the local cache, and what it is for. An environment that is not installed is built by \`pyro env pull\`, or on first use.
    `,
    examples: [
      ["List environments", "$0 env list"],
      ["As JSON", "$0 env list --json"],
    ],
  });

  protected async perform(out: Output): Promise<undefined> {
    const list = await (await this.context.manager()).listEnvironments();
    const rows = list.environments.map((env) => [
      env.name,
      env.installed ? "installed" : "not installed",
      env.description,
    ]);
    out.result(list, { stdout: table(rows) });
    out.status({
      catalog_version: list.catalog_version,
      count: list.count,
      installed: list.environments.filter((env) => env.installed).length,
    });
    return undefined;
  }
}
