// Owns `pyro host doctor`: which agent hosts are installed here, and whether the exact command
// `pyro host print-config` prints starts an MCP server that answers a real MCP client (initialize
// and tools/list over stdio).
import { access } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { Command, Option } from "clipanion";
import { z } from "zod";
import { McpProfile } from "../../../mcp/profiles.js";
import { cannotRunReason } from "../../../rootless/mode.js";
import { PYRO_VERSION } from "../../../version.js";
import { PyroCommand } from "../../base.js";
import { parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import { table } from "../../table.js";
import {
  findOnPath,
  HOST_CLIS,
  HOSTS,
  type HostName,
  isConnectable,
  LAUNCHER_DESCRIPTION,
  type Launcher,
  resolveLauncher,
  type ServerCommand,
  serverCommand,
  shellLine,
} from "./config.js";

export interface HostPresence {
  host: HostName;
  /** The host's program on PATH; null for Claude Desktop, which has none (its config dir is checked). */
  cli: string | null;
  installed: boolean;
}

export interface ServerCheck {
  ok: boolean;
  detail: string;
  /** Set when the server answered but said it can run nothing: what to do instead of reinstalling. */
  fix?: string;
}

export interface HostDoctorReport {
  hosts: HostPresence[];
  launcher: Launcher;
  /** The server command as a shell line: what print-config puts in every host's config. */
  command: string;
  server: ServerCheck;
  /** What to do next, when the server check failed. */
  fix?: string;
}

/** Generous: a cold Node.js start of the bundled CLI on a busy machine, plus npx's download. */
export const SERVER_CHECK_TIMEOUT_MS = 20_000;

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** Claude Desktop has no CLI: it counts as installed when its config directory exists. */
function claudeDesktopDirs(env: Record<string, string | undefined>): string[] {
  const home = env.HOME ?? homedir();
  return [
    join(home, "Library", "Application Support", "Claude"),
    join(env.XDG_CONFIG_HOME ?? join(home, ".config"), "Claude"),
  ];
}

export async function hostPresence(env: Record<string, string | undefined>): Promise<HostPresence[]> {
  return Promise.all(
    HOSTS.map(async (host): Promise<HostPresence> => {
      const cli = HOST_CLIS[host];
      if (cli !== null) return { host, cli, installed: (await findOnPath(cli, env.PATH)) !== undefined };
      const dirs = await Promise.all(claudeDesktopDirs(env).map(exists));
      return { host, cli, installed: dirs.some(Boolean) };
    }),
  );
}

/** The stderr line that says most: the first naming an error (Node.js and npm end with noise such
 * as "Node.js v20…" or "A complete log…"), else the last. */
function tellingLine(text: string): string {
  const lines = text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
  return lines.find((line) => /error/i.test(line)) ?? lines[lines.length - 1] ?? "";
}

export interface CheckServerOptions {
  /** The server's environment (hosts pass their own); this process's when absent. */
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

/**
 * Starts `server` as an agent host would and talks to it with the MCP SDK's own client: initialize,
 * then tools/list, within `timeoutMs` in all. The server must say it is pyro and list at least one
 * tool. It is stopped either way.
 */
export async function checkServer(server: ServerCommand, opts: CheckServerOptions = {}): Promise<ServerCheck> {
  const timeoutMs = opts.timeoutMs ?? SERVER_CHECK_TIMEOUT_MS;
  const env = Object.fromEntries(
    Object.entries(opts.env ?? process.env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
  // The MCP SDK is loaded only by the commands that speak MCP: every other command starts faster.
  const [{ Client }, { StdioClientTransport }] = await Promise.all([
    import("@modelcontextprotocol/sdk/client/index.js"),
    import("@modelcontextprotocol/sdk/client/stdio.js"),
  ]);
  const transport = new StdioClientTransport({ command: server.command, args: server.args, env, stderr: "pipe" });
  let stderr = "";
  transport.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4096);
  });
  const client = new Client({ name: "pyro-host-doctor", version: PYRO_VERSION });
  // The first thing that went wrong on the wire (e.g. a line on stdout that is not JSON-RPC).
  let wireError: Error | undefined;
  client.onerror = (err) => {
    wireError ??= err;
  };
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), timeoutMs);
  const request = { signal: deadline.signal, timeout: timeoutMs };
  let check: ServerCheck;
  // connect() spawns the server before its first await; its pid is kept here because a failed
  // connect() makes the SDK forget the process while it waits seconds to signal it.
  let pid: number | null = null;
  try {
    const connected = client.connect(transport, request);
    pid = transport.pid;
    check = await talk(client, connected, request);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if ((err as NodeJS.ErrnoException).syscall?.startsWith("spawn")) {
      check = { ok: false, detail: `cannot start ${server.command}: ${message}` };
    } else if (deadline.signal.aborted) {
      const why = wireError ? `; it wrote something that is not JSON-RPC (${wireError.message})` : "";
      check = { ok: false, detail: `no answer within ${timeoutMs / 1000} s${why}` };
    } else {
      const why = tellingLine(stderr);
      check = { ok: false, detail: `the server exited before answering${why ? `: ${why}` : ` (${message})`}` };
    }
  }
  clearTimeout(timer);
  // A server that answered gets the graceful close a host gives it (stdin closed, then signals); one
  // that did not would only make the SDK wait seconds before its SIGTERM.
  if (!check.ok && pid !== null) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
  await client.close().catch(() => {});
  return check;
}

async function talk(
  client: Client,
  connected: Promise<void>,
  request: { signal: AbortSignal; timeout: number },
): Promise<ServerCheck> {
  await connected;
  const info = client.getServerVersion();
  if (info?.name !== "pyro") {
    return { ok: false, detail: `initialize answered by ${JSON.stringify(info?.name)}, not pyro` };
  }
  const { tools } = await client.listTools({}, request);
  if (tools.length === 0) return { ok: false, detail: "the server listed no tools" };
  const cannotRun = cannotRunReason(client.getInstructions());
  if (cannotRun) {
    return {
      ok: false,
      detail: `pyro ${info.version} answered, but every tool will fail: ${cannotRun}`,
      fix: "fix what it names (pyro doctor shows the same), then run pyro host doctor again",
    };
  }
  return { ok: true, detail: `pyro ${info.version} answered initialize and listed ${tools.length} tools` };
}

/** What to do when the server check fails, for the launcher that printed the command. */
function fixFor(launcher: Launcher, command: string): string {
  if (launcher === "npx") {
    return "npx could not run the pyro-mcp package from the npm registry; drop --launcher npx to use this installation's pyro";
  }
  const node = launcher === "bin" ? "; if it cannot find node, use --launcher local" : "";
  return `run \`${command}\` in a shell to see why; from a checkout run npm run build, for an installed package reinstall it (npm install -g pyro-mcp-VERSION.tgz)${node}`;
}

function render(report: HostDoctorReport): string {
  const rows = report.hosts.map((h) => [`  ${h.host}`, h.cli ?? "(app)", h.installed ? "installed" : "not found"]);
  let text = "hosts:\n" + table(rows);
  text += `command: ${report.command}\n`;
  text += `server:  ${report.server.ok ? "PASS" : "FAIL"}  ${report.server.detail}\n`;
  const installed = report.hosts.filter((h) => h.installed).map((h) => h.host);
  const connectable = installed.find(isConnectable);
  if (connectable) text += `\nnext: pyro host connect ${connectable}\n`;
  else if (installed.length > 0) text += `\nnext: pyro host print-config ${installed[0]}\n`;
  return text;
}

const DoctorFlags = z.object({ profile: McpProfile.optional() });

export class HostDoctorCommand extends PyroCommand {
  static override paths = [["host", "doctor"]];

  static override usage = Command.Usage({
    category: "MCP",
    description: "check the agent hosts here and that the command they run answers",
    details: `
      Reports which agent hosts are installed (their CLIs on PATH: \`claude\`, \`codex\`, \`gemini\`, \`opencode\`, \`cursor\`, \`code\`; Claude Desktop by its config directory), then starts exactly the command \`pyro host print-config\` puts in every host's config (same \`--launcher\` and \`--profile\`) the way a host does, talks to it with an MCP client over stdio (initialize, then tools/list) and stops it.

      Exits 1, naming the command and what to do, when that server does not start or does not answer within ${SERVER_CHECK_TIMEOUT_MS / 1000} s.
    `,
    examples: [
      ["Check the hosts and the command they run", "$0 host doctor"],
      ["Check the npx command instead", "$0 host doctor --launcher npx"],
      ["As JSON", "$0 host doctor --json"],
    ],
  });

  profile = Option.String("--profile", {
    description: "vm-run, workspace-core or workspace-full (default: the server's, workspace-core)",
  });
  launcher = Option.String("--launcher", { description: LAUNCHER_DESCRIPTION });

  protected async perform(out: Output): Promise<number> {
    const { profile } = parseFlags(DoctorFlags, { profile: this.profile });
    const env = this.context.env;
    const launcher = resolveLauncher(this.launcher);
    const server = serverCommand({ profile, launcher, pathVar: env.PATH });
    const command = shellLine([server.command, ...server.args]);
    const [hosts, check] = await Promise.all([hostPresence(env), checkServer(server, { env })]);
    const fix = check.ok ? undefined : (check.fix ?? fixFor(launcher, command));
    const report: HostDoctorReport = { hosts, launcher, command, server: check, fix };
    out.result(report, { stdout: render(report) });
    out.status({ installed: hosts.filter((h) => h.installed).length, launcher, server: check.ok });
    if (check.ok) return 0;
    out.problem(
      check.fix
        ? `\`${command}\` cannot run sandboxes: ${check.detail}; ${fix}`
        : `\`${command}\` did not answer as an MCP server (${check.detail}); ${fix}`,
    );
    return 1;
  }
}
