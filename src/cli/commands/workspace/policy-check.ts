// Owns `pyro workspace policy check`: the allowlist's dry run for one URL.
import { Command, Option } from "clipanion";
import { PolicyCheckParams } from "../../../contract/workspace.js";
import { PyroCommand } from "../../base.js";
import { parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import { POSITIONALS } from "./render.js";

export class WorkspacePolicyCheckCommand extends PyroCommand {
  static override paths = [["workspace", "policy", "check"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "say what the network policy would do with a URL",
    details: `
      Reads \`WS\`'s network policy and rules and says whether a connection to \`URL\` (\`https://host/path\`, or \`HOST:PORT\`) would be let through, and which rule decides. Nothing is sent anywhere. Exits 0 when allowed and 1 when refused, so scripts can test it.

      At run time the gateway also refuses an allowed name that resolves only to private, loopback, link-local or host addresses (unless an address rule names them), and a connection whose TLS server name or HTTP Host is not the name it dialed.
    `,
    examples: [
      ["Would npm install work?", "$0 workspace policy check repro-fix https://registry.npmjs.org/left-pad"],
      ["A host and port", "$0 workspace policy check repro-fix api.example.com:8443"],
    ],
  });

  workspace = Option.String({ name: "WS" });
  url = Option.String({ name: "URL" });

  protected async perform(out: Output): Promise<number> {
    const params = parseFlags(
      PolicyCheckParams,
      { workspace: this.workspace, url: this.url },
      { ...POSITIONALS, url: "URL" },
    );
    const result = await (await this.context.manager()).workspaces.policyCheck(params);
    const verdict = result.allowed ? "allowed" : "denied";
    out.result(result, { stdout: `${verdict}: ${result.name}:${result.port} (${result.reason})\n` });
    out.status({ workspace_id: result.workspace_id, allowed: result.allowed, rule: result.rule ?? undefined });
    return result.allowed ? 0 : 1;
  }
}
