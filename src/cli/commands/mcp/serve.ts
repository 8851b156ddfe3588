// Owns `pyro mcp serve`: pyro's MCP server on stdio, for Claude Code, Codex, Cursor and friends.
import { Command, Option } from "clipanion";
import { z } from "zod";
import { EngineChoice } from "../../../contract/schemas.js";
import { DEFAULT_PROFILE, McpProfile, PROFILE_TOOLS } from "../../../mcp/profiles.js";
import { serveStdio } from "../../../mcp/server.js";
import { PyroCommand } from "../../base.js";
import { parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";

const ServeFlags = z.object({
  profile: McpProfile.default(DEFAULT_PROFILE),
  engine: EngineChoice.default("auto"),
});

export class McpServeCommand extends PyroCommand {
  static override paths = [["mcp", "serve"]];

  static override usage = Command.Usage({
    category: "MCP",
    description: "serve pyro's tools to an agent over MCP (stdio)",
    details: `
      Speaks the Model Context Protocol on stdin/stdout until the client disconnects; logs go to stderr. An agent host starts it for you once it is registered, e.g. \`claude mcp add pyro -- npx -y pyro-mcp mcp serve\`.

      \`--profile\` chooses the tools: \`vm-run\` exposes only \`vm_run\`; \`workspace-core\` (the default) adds the persistent-workspace tools; \`workspace-full\` exposes every tool. \`--engine\` is the engine for calls that leave it at \`auto\`.
    `,
    examples: [
      ["Serve the default profile", "$0 mcp serve"],
      ["Serve only vm_run", "$0 mcp serve --profile vm-run"],
      ["Register with Claude Code", "claude mcp add pyro -- npx -y pyro-mcp mcp serve"],
    ],
  });

  profile = Option.String("--profile", {
    description: "vm-run, workspace-core or workspace-full (default workspace-core)",
  });
  engine = Option.String("--engine", { description: "auto, gvisor, qemu or firecracker (default auto)" });

  protected override readonly handlesInterrupt = true;

  protected async perform(out: Output): Promise<undefined> {
    const { profile, engine } = parseFlags(ServeFlags, { profile: this.profile, engine: this.engine });
    const { stdin, stdout, stderr, signal } = this.context;
    if (stdout === process.stdout) {
      // A stray console.log anywhere in the process would corrupt the protocol stream.
      console.log = console.info = console.debug = (...args: unknown[]) => console.error(...args);
    }
    const manager = await this.context.manager({ engine });
    out.status({ profile, engine, tools: PROFILE_TOOLS[profile].join(","), transport: "stdio" });
    await serveStdio({
      profile,
      manager,
      stdin,
      stdout,
      signal,
      log: (line) => stderr.write(`${line}\n`),
    });
    return undefined;
  }
}
