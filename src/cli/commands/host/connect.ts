// Owns `pyro host connect claude-code|codex|gemini`: registering pyro's MCP server through the
// host's own CLI (`claude mcp add ...`, `codex mcp add ...`, `gemini mcp add ...`) when it is on
// PATH, or printing that exact command for the user to run when it is not (or with --dry-run).
import { execFile } from "node:child_process";
import { Command, Option, UsageError } from "clipanion";
import { z } from "zod";
import { McpProfile } from "../../../mcp/profiles.js";
import { PyroCommand } from "../../base.js";
import { parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import {
  CONNECTABLE_HOSTS,
  connectCommand,
  findOnPath,
  HOSTS,
  isConnectable,
  isHost,
  LAUNCHER_DESCRIPTION,
  resolveLauncher,
  shellLine,
} from "./config.js";

const ConnectFlags = z.object({ host: z.string(), profile: McpProfile.optional() });

/** How long the host's `mcp add` may take; it only edits a config file. */
const HOST_CLI_TIMEOUT_MS = 60_000;

export interface HostCliRun {
  exit_code: number;
  output: string;
}

/** Runs `file args...` with nothing inherited, capturing stdout and stderr (in that order). */
export function runHostCli(
  file: string,
  args: readonly string[],
  opts: { env: NodeJS.ProcessEnv; signal?: AbortSignal },
): Promise<HostCliRun> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { env: opts.env, signal: opts.signal, timeout: HOST_CLI_TIMEOUT_MS, maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const output = `${stdout}${stderr}`;
        if (!err) return resolve({ exit_code: 0, output });
        const code = (err as NodeJS.ErrnoException & { code?: unknown }).code;
        if (typeof code === "number") return resolve({ exit_code: code, output });
        reject(err);
      },
    );
  });
}

export class HostConnectCommand extends PyroCommand {
  static override paths = [["host", "connect"]];

  static override usage = Command.Usage({
    category: "MCP",
    description: "register pyro's MCP server with Claude Code, Codex or Gemini CLI",
    details: `
      Runs the host's own registration command and reports its exit code and output: \`claude mcp add pyro -- PYRO mcp serve\` for \`claude-code\`, \`codex mcp add pyro -- PYRO mcp serve\` for \`codex\`, \`gemini mcp add --scope user pyro PYRO -- mcp serve\` for \`gemini\`. \`PYRO\` is this installation's \`pyro\` program by its absolute path (\`--launcher bin\`, the default; from a checkout, this Node.js and its \`dist/bin/pyro.mjs\`); \`--launcher local\` always uses the latter, \`--launcher npx\` runs \`npx -y pyro-mcp\` (the package from the npm registry). \`pyro host doctor\` checks that the command answers.

      When the host's CLI is not on PATH, or with \`--dry-run\`, nothing is run: the exact command is printed on stdout for you to run, and the command still succeeds. Other hosts (${HOSTS.filter((h) => !isConnectable(h)).join(", ")}) are configured by file: see \`pyro host print-config NAME\`. Gemini CLI starts MCP servers only in folders you have trusted.

      \`--profile\` chooses the tools the server exposes (\`vm-run\`, \`workspace-core\`, \`workspace-full\`).
    `,
    examples: [
      ["Register with Claude Code", "$0 host connect claude-code"],
      ["Register with Codex, every tool", "$0 host connect codex --profile workspace-full"],
      ["Register with Gemini CLI (user settings)", "$0 host connect gemini"],
      ["Only print the command", "$0 host connect claude-code --dry-run"],
    ],
  });

  host = Option.String({ name: "NAME" });
  profile = Option.String("--profile", {
    description: "vm-run, workspace-core or workspace-full (default: the server's, workspace-core)",
  });
  launcher = Option.String("--launcher", { description: LAUNCHER_DESCRIPTION });
  dryRun = Option.Boolean("--dry-run", false, { description: "Print the command instead of running it" });

  protected async perform(out: Output): Promise<number> {
    const { host, profile } = parseFlags(ConnectFlags, { host: this.host, profile: this.profile }, { host: "NAME" });
    if (!isConnectable(host)) {
      throw new UsageError(
        isHost(host)
          ? `${host} has no CLI to register MCP servers with; run pyro host print-config ${host} and add the snippet to its config`
          : `unknown host ${JSON.stringify(host)}; connect takes ${CONNECTABLE_HOSTS.join(", ")} (for ${HOSTS.filter((h) => !isConnectable(h)).join(", ")} use pyro host print-config NAME)`,
      );
    }
    const argv = connectCommand(host, {
      profile,
      launcher: resolveLauncher(this.launcher),
      pathVar: this.context.env.PATH,
    });
    const [cli = "", ...args] = argv;
    const command = shellLine(argv);
    const found = this.dryRun ? undefined : await findOnPath(cli, this.context.env.PATH);

    if (found === undefined) {
      const reason = this.dryRun ? "--dry-run" : `${cli} not found on PATH`;
      out.result({ host, ran: false, command, reason }, { stdout: `${command}\n` });
      out.status({
        host,
        ran: false,
        reason: this.dryRun ? reason : `${cli} CLI not found on PATH; run the printed command once it is installed`,
      });
      return 0;
    }

    const { exit_code, output } = await runHostCli(found, args, {
      env: this.context.env as NodeJS.ProcessEnv,
      signal: this.context.signal,
    });
    out.result({ host, ran: true, command, exit_code, output }, { stdout: output });
    out.status({ host, ran: true, exit_code, command });
    if (exit_code === 0) return 0;
    out.problem(`${command} exited with ${exit_code}; see its output above (is pyro already registered?)`);
    return 1;
  }
}
