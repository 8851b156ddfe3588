// Owns `pyro host print-config NAME`: the snippet that registers pyro's MCP server with one agent
// host, in that host's own config format, and where it goes.
import { Command, Option, UsageError } from "clipanion";
import { z } from "zod";
import { McpProfile } from "../../../mcp/profiles.js";
import { PyroCommand } from "../../base.js";
import { parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import { HOSTS, isHost, LAUNCHER_DESCRIPTION, printConfig, resolveLauncher } from "./config.js";

const PrintConfigFlags = z.object({ host: z.string(), profile: McpProfile.optional() });

export class HostPrintConfigCommand extends PyroCommand {
  static override paths = [["host", "print-config"]];

  static override usage = Command.Usage({
    category: "MCP",
    description: "print the config that registers pyro with an agent host",
    details: `
      Prints, on stdout, the snippet that makes the agent host \`NAME\` start this installation's MCP server, in the host's own format; the status line says which file it belongs in. Merge it into that file by hand (existing servers stay).

      Hosts: ${HOSTS.map((host) => `\`${host}\``).join(", ")}. For \`claude-code\` the snippet is a shell command; \`pyro host connect claude-code|codex|gemini\` runs the host's own \`mcp add\` for you.

      The command the host runs depends on \`--launcher\`: \`bin\` (the default) is this installation's \`pyro\` program by its absolute path, e.g. \`/usr/local/bin/pyro mcp serve\` after \`npm install -g\`, or this Node.js with this checkout's \`dist/bin/pyro.mjs\` when no installed \`pyro\` leads here; \`local\` is always the latter (for hosts that start programs without \`node\` on their PATH); \`npx\` is \`npx -y pyro-mcp mcp serve\` (the package from the npm registry). \`pyro host doctor\` starts the same command and checks that it answers.

      \`--profile\` chooses the tools the server exposes (\`vm-run\`, \`workspace-core\`, \`workspace-full\`); without it the server's default applies.
    `,
    examples: [
      ["Cursor's mcp.json", "$0 host print-config cursor"],
      ["Gemini CLI's settings.json", "$0 host print-config gemini"],
      ["Codex's config.toml with every tool", "$0 host print-config codex --profile workspace-full"],
      ["As JSON", "$0 host print-config claude-desktop --json"],
    ],
  });

  host = Option.String({ name: "NAME" });
  profile = Option.String("--profile", {
    description: "vm-run, workspace-core or workspace-full (default: the server's, workspace-core)",
  });
  launcher = Option.String("--launcher", { description: LAUNCHER_DESCRIPTION });

  protected async perform(out: Output): Promise<undefined> {
    const { host, profile } = parseFlags(
      PrintConfigFlags,
      { host: this.host, profile: this.profile },
      { host: "NAME" },
    );
    if (!isHost(host)) throw new UsageError(`unknown host ${JSON.stringify(host)}; use one of ${HOSTS.join(", ")}`);
    const config = printConfig(host, {
      profile,
      launcher: resolveLauncher(this.launcher),
      pathVar: this.context.env.PATH,
    });
    out.result(config, { stdout: config.text });
    out.status({ host: config.host, format: config.format, path: config.path_hint });
    return undefined;
  }
}
