// Owns what the `pyro host` commands know about agent hosts: the names, the command a host runs to
// start pyro's MCP server, each host's config snippet in its own format (JSON, TOML or a shell
// line), the `mcp add` argv of hosts that have a CLI for it, and finding a host program on a PATH.
import { access, constants, stat } from "node:fs/promises";
import { delimiter, join, sep } from "node:path";
import { UsageError } from "clipanion";
import { PyroError } from "../../../contract/errors.js";
import { PACKAGE_ROOT } from "../../../version.js";

export const HOSTS = ["claude-desktop", "cursor", "vscode", "opencode", "codex", "claude-code"] as const;
export type HostName = (typeof HOSTS)[number];

/** Hosts whose own CLI can register an MCP server (`pyro host connect`). */
export const CONNECTABLE_HOSTS = ["claude-code", "codex"] as const;
export type ConnectableHost = (typeof CONNECTABLE_HOSTS)[number];

/** The program each host ships on PATH, if any (Claude Desktop has none). */
export const HOST_CLIS: Readonly<Record<HostName, string | null>> = {
  "claude-desktop": null,
  cursor: "cursor",
  vscode: "code",
  opencode: "opencode",
  codex: "codex",
  "claude-code": "claude",
};

/** The name pyro is registered under in every host's config. */
export const SERVER_NAME = "pyro";

export interface ServerOptions {
  /** An MCP profile (`vm-run`, `workspace-core`, `workspace-full`); the server's default when absent. */
  profile?: string;
  /** `npx` runs the published package; `local` runs this installation with this Node.js. */
  launcher?: Launcher;
}

export const LAUNCHERS = ["npx", "local"] as const;
export type Launcher = (typeof LAUNCHERS)[number];

/** `npx` when pyro runs as an installed package, `local` from a checkout (whose package npx would
 * not find): either way the printed command runs on this machine. */
export function defaultLauncher(): Launcher {
  return PACKAGE_ROOT.split(sep).includes("node_modules") ? "npx" : "local";
}

export interface ServerCommand {
  command: string;
  args: string[];
}

export interface HostConfig {
  host: HostName;
  format: "json" | "toml" | "shell";
  /** Where the text goes, in words (a file path or "(run in your shell)"). */
  path_hint: string;
  text: string;
}

export function isHost(name: string): name is HostName {
  return (HOSTS as readonly string[]).includes(name);
}

export function isConnectable(name: string): name is ConnectableHost {
  return (CONNECTABLE_HOSTS as readonly string[]).includes(name);
}

/** The command an agent host runs to start pyro's MCP server on stdio. */
export function serverCommand(opts: ServerOptions = {}): ServerCommand {
  const serve = ["mcp", "serve", ...(opts.profile ? ["--profile", opts.profile] : [])];
  if (opts.launcher === "local") {
    return { command: process.execPath, args: [join(PACKAGE_ROOT, "dist", "bin", "pyro.mjs"), ...serve] };
  }
  return { command: "npx", args: ["-y", "pyro-mcp", ...serve] };
}

function unknownHost(name: string): PyroError {
  return new PyroError("INVALID_ARGUMENT", `unknown host ${JSON.stringify(name)}; use one of ${HOSTS.join(", ")}`);
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** A TOML basic string; JSON's escapes are valid TOML escapes for the characters these hold. */
function tomlString(value: string): string {
  return JSON.stringify(value);
}

/** One argv word as the shell reads it: bare when it is plainly safe, else single-quoted. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

export function shellLine(argv: readonly string[]): string {
  return argv.map(shellWord).join(" ");
}

/** The config that registers pyro with `host`, in that host's own format. */
export function printConfig(host: string, opts: ServerOptions = {}): HostConfig {
  const { command, args } = serverCommand(opts);
  switch (host) {
    case "claude-desktop":
      return {
        host,
        format: "json",
        path_hint:
          "~/Library/Application Support/Claude/claude_desktop_config.json (macOS) or ~/.config/Claude/claude_desktop_config.json (Linux)",
        text: json({ mcpServers: { [SERVER_NAME]: { command, args } } }),
      };
    case "cursor":
      return {
        host,
        format: "json",
        path_hint: ".cursor/mcp.json (project) or ~/.cursor/mcp.json",
        text: json({ mcpServers: { [SERVER_NAME]: { command, args } } }),
      };
    case "vscode":
      return {
        host,
        format: "json",
        path_hint: ".vscode/mcp.json",
        text: json({ servers: { [SERVER_NAME]: { type: "stdio", command, args } } }),
      };
    case "opencode":
      return {
        host,
        format: "json",
        path_hint: "opencode.json",
        text: json({
          $schema: "https://opencode.ai/config.json",
          mcp: { [SERVER_NAME]: { type: "local", command: [command, ...args], enabled: true } },
        }),
      };
    case "codex":
      return {
        host,
        format: "toml",
        path_hint: "~/.codex/config.toml",
        text:
          `[mcp_servers.${SERVER_NAME}]\n` +
          `command = ${tomlString(command)}\n` +
          `args = [${args.map(tomlString).join(", ")}]\n`,
      };
    case "claude-code":
      return {
        host,
        format: "shell",
        path_hint: "(run in your shell)",
        text: `${shellLine(connectCommand("claude-code", opts))}\n`,
      };
    default:
      throw unknownHost(host);
  }
}

/** The argv that registers pyro through the host's own CLI (`claude mcp add ...`). */
export function connectCommand(host: string, opts: ServerOptions = {}): string[] {
  const cli = isConnectable(host) ? HOST_CLIS[host] : null;
  if (cli === null) {
    if (!isHost(host)) throw unknownHost(host);
    throw new PyroError(
      "INVALID_ARGUMENT",
      `${host} has no CLI to register MCP servers with; use one of ${CONNECTABLE_HOSTS.join(", ")}, or pyro host print-config ${host}`,
    );
  }
  const { command, args } = serverCommand(opts);
  return [cli, "mcp", "add", SERVER_NAME, "--", command, ...args];
}

/** The first executable `name` on `pathVar` (a PATH value), or undefined. */
export async function findOnPath(name: string, pathVar: string | undefined): Promise<string | undefined> {
  for (const dir of (pathVar ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      if (!(await stat(candidate)).isFile()) continue;
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

/** A `--launcher` value (or none) as a launcher; anything else is a usage error. */
export function resolveLauncher(value: string | undefined): Launcher {
  if (value === undefined) return defaultLauncher();
  if ((LAUNCHERS as readonly string[]).includes(value)) return value as Launcher;
  throw new UsageError(`--launcher must be npx or local (got ${value})`);
}
