// Owns what the `pyro host` commands know about agent hosts: the names, the command a host runs
// to start pyro's MCP server (this installation's `pyro` bin by default), each host's config
// snippet in its own format (JSON, TOML or a shell line), the `mcp add` argv of hosts that have a
// CLI for it, and finding a host program on a PATH.
import { accessSync, constants, realpathSync } from "node:fs";
import { access, stat } from "node:fs/promises";
import { basename, delimiter, dirname, join } from "node:path";
import { UsageError } from "clipanion";
import { PyroError } from "../../../contract/errors.js";
import { PACKAGE_ROOT } from "../../../version.js";

export const HOSTS = ["claude-desktop", "cursor", "vscode", "opencode", "codex", "claude-code", "gemini"] as const;
export type HostName = (typeof HOSTS)[number];

/** Hosts whose own CLI can register an MCP server (`pyro host connect`). */
export const CONNECTABLE_HOSTS = ["claude-code", "codex", "gemini"] as const;
export type ConnectableHost = (typeof CONNECTABLE_HOSTS)[number];

/** The program each host ships on PATH, if any (Claude Desktop has none). */
export const HOST_CLIS: Readonly<Record<HostName, string | null>> = {
  "claude-desktop": null,
  cursor: "cursor",
  vscode: "code",
  opencode: "opencode",
  codex: "codex",
  "claude-code": "claude",
  gemini: "gemini",
};

/** The name pyro is registered under in every host's config. */
export const SERVER_NAME = "pyro";

/**
 * How a host starts pyro. `bin`: this installation's `pyro` program by its absolute path (node and
 * this package's dist/bin/pyro.mjs when no installed bin leads here, as in a checkout). `local`:
 * always this Node.js and this package's dist/bin/pyro.mjs, for hosts that start programs without
 * `node` on their PATH. `npx`: the package from the npm registry, once it is published there.
 */
export const LAUNCHERS = ["bin", "local", "npx"] as const;
export type Launcher = (typeof LAUNCHERS)[number];
export const DEFAULT_LAUNCHER: Launcher = "bin";

/** The `pyro` entry point of this package, which its `bin` links to. */
export const PYRO_ENTRY = join(PACKAGE_ROOT, "dist", "bin", "pyro.mjs");

export interface ServerOptions {
  /** An MCP profile (`vm-run`, `workspace-core`, `workspace-full`); the server's default when absent. */
  profile?: string;
  /** `bin` when absent. */
  launcher?: Launcher;
  /** The PATH value searched for the installed `pyro` bin; process.env.PATH when absent. */
  pathVar?: string;
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

function realpathOrUndefined(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

export interface InstalledBinSearch {
  /** The package whose bin is wanted; PACKAGE_ROOT when absent. */
  packageRoot?: string;
  /** The running Node.js; npm's global bin directory is usually next to it. */
  execPath?: string;
  /** A PATH value; process.env.PATH when absent. */
  pathVar?: string;
}

/**
 * The absolute path of an installed `pyro` program that runs this package, or undefined (a
 * checkout). npm installs the bin as a symlink to dist/bin/pyro.mjs: PREFIX/bin/pyro for
 * `npm install -g [--prefix PREFIX]` (the package in PREFIX/lib/node_modules),
 * node_modules/.bin/pyro for a project install; next to node and on PATH are searched too. A
 * `pyro` of another installation does not count: only one that resolves to this package's own
 * entry point.
 */
export function installedBin(search: InstalledBinSearch = {}): string | undefined {
  const root = search.packageRoot ?? PACKAGE_ROOT;
  const entry = realpathOrUndefined(join(root, "dist", "bin", "pyro.mjs"));
  if (entry === undefined) return undefined;
  const candidates: string[] = [];
  const nodeModules = dirname(root);
  if (basename(nodeModules) === "node_modules") {
    candidates.push(join(nodeModules, ".bin", "pyro"));
    if (basename(dirname(nodeModules)) === "lib") candidates.push(join(dirname(dirname(nodeModules)), "bin", "pyro"));
  }
  candidates.push(join(dirname(search.execPath ?? process.execPath), "pyro"));
  for (const dir of (search.pathVar ?? process.env.PATH ?? "").split(delimiter)) {
    if (dir.startsWith("/")) candidates.push(join(dir, "pyro"));
  }
  return candidates.find((candidate) => {
    if (realpathOrUndefined(candidate) !== entry) return false;
    try {
      accessSync(candidate, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The command an agent host runs to start pyro's MCP server on stdio. */
export function serverCommand(opts: ServerOptions = {}): ServerCommand {
  const serve = ["mcp", "serve", ...(opts.profile ? ["--profile", opts.profile] : [])];
  const launcher = opts.launcher ?? DEFAULT_LAUNCHER;
  if (launcher === "npx") return { command: "npx", args: ["-y", "pyro-mcp", ...serve] };
  const bin = launcher === "bin" ? installedBin({ pathVar: opts.pathVar }) : undefined;
  if (bin !== undefined) return { command: bin, args: serve };
  return { command: process.execPath, args: [PYRO_ENTRY, ...serve] };
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
    case "gemini":
      return {
        host,
        format: "json",
        path_hint: "~/.gemini/settings.json (or .gemini/settings.json in a project)",
        text: json({ mcpServers: { [SERVER_NAME]: { command, args } } }),
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

/**
 * The argv that registers pyro through the host's own CLI (`claude mcp add ...`). Gemini's `mcp add`
 * takes the command before `--` (after it only the args), and writes to the project's settings
 * unless told `--scope user`, which is where its other configs and print-config's snippet go.
 */
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
  if (host === "gemini") return [cli, "mcp", "add", "--scope", "user", SERVER_NAME, command, "--", ...args];
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
  if (value === undefined) return DEFAULT_LAUNCHER;
  if ((LAUNCHERS as readonly string[]).includes(value)) return value as Launcher;
  throw new UsageError(`--launcher must be one of ${LAUNCHERS.join(", ")} (got ${value})`);
}

/** The `--launcher` option's help, shared by print-config, connect and doctor. */
export const LAUNCHER_DESCRIPTION =
  "bin (default: this installation's pyro program), local (this Node.js and this package's dist/bin/pyro.mjs) or npx (the pyro-mcp package from the npm registry)";
