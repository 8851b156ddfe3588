// Owns `pyro host doctor`: which agent hosts are installed here, whether `npx` (what every host
// config runs) is on PATH, and whether `pyro mcp serve` starts and answers an MCP `initialize`.
import { spawn } from "node:child_process";
import { access } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { Command } from "clipanion";
import { PyroCommand } from "../../base.js";
import type { Output } from "../../output.js";
import { table } from "../../table.js";
import { findOnPath, HOST_CLIS, HOSTS, type HostName } from "./config.js";

export interface HostPresence {
  host: HostName;
  /** The host's program on PATH; null for Claude Desktop, which has none (its config dir is checked). */
  cli: string | null;
  installed: boolean;
}

export interface ServerCheck {
  ok: boolean;
  detail: string;
}

export interface HostDoctorReport {
  hosts: HostPresence[];
  npx: boolean;
  server: ServerCheck;
}

export const SERVER_CHECK_TIMEOUT_MS = 10_000;

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

/** The argv that starts this very pyro's MCP server with the smallest profile. */
export function serverArgv(): string[] {
  return [process.execPath, ...process.execArgv, process.argv[1] ?? "", "mcp", "serve", "--profile", "vm-run"];
}

const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: {
    protocolVersion: "2025-06-18",
    capabilities: {},
    clientInfo: { name: "pyro-host-doctor", version: "1" },
  },
};

function lastLine(text: string): string {
  const lines = text.trim().split("\n");
  return (lines[lines.length - 1] ?? "").trim();
}

/**
 * Starts `argv` (an MCP server on stdio), sends `initialize` and waits up to `timeoutMs` for a
 * result whose serverInfo.name is "pyro"; the server is killed either way.
 */
export function checkServer(argv: readonly string[], timeoutMs = SERVER_CHECK_TIMEOUT_MS): Promise<ServerCheck> {
  const [file = "", ...args] = argv;
  return new Promise((resolve) => {
    let stdout = "";
    let stderr = "";
    let settled = false;
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"] });
    const finish = (check: ServerCheck) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdin.destroy();
      child.stdout.destroy();
      child.stderr.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      resolve(check);
    };
    const timer = setTimeout(
      () => finish({ ok: false, detail: `no answer to initialize within ${timeoutMs / 1000} s` }),
      timeoutMs,
    );
    child.on("error", (err) => finish({ ok: false, detail: `cannot start ${file}: ${err.message}` }));
    child.on("close", (code, signal) => {
      const why = lastLine(stderr);
      finish({
        ok: false,
        detail: `the server exited (${signal ?? `code ${code}`}) before answering initialize${why ? `: ${why}` : ""}`,
      });
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-4096);
    });
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      stdout += chunk;
      let newline = stdout.indexOf("\n");
      while (newline !== -1) {
        const line = stdout.slice(0, newline).trim();
        stdout = stdout.slice(newline + 1);
        newline = stdout.indexOf("\n");
        if (!line) continue;
        let message: {
          id?: unknown;
          result?: { serverInfo?: { name?: unknown; version?: unknown }; protocolVersion?: unknown };
          error?: { message?: unknown };
        };
        try {
          message = JSON.parse(line);
        } catch {
          return finish({
            ok: false,
            detail: `the server wrote something that is not JSON-RPC: ${line.slice(0, 200)}`,
          });
        }
        if (message.id !== INITIALIZE.id) continue;
        if (message.error) return finish({ ok: false, detail: `initialize failed: ${String(message.error.message)}` });
        const info = message.result?.serverInfo;
        if (info?.name === "pyro") {
          return finish({
            ok: true,
            detail: `pyro ${String(info.version)} answered initialize (protocol ${String(message.result?.protocolVersion)})`,
          });
        }
        return finish({ ok: false, detail: `initialize answered by ${JSON.stringify(info?.name)}, not pyro` });
      }
    });
    child.stdin.on("error", () => {});
    child.stdin.write(`${JSON.stringify(INITIALIZE)}\n`);
  });
}

function render(report: HostDoctorReport): string {
  const rows = report.hosts.map((h) => [`  ${h.host}`, h.cli ?? "(app)", h.installed ? "installed" : "not found"]);
  let text = "hosts:\n" + table(rows);
  text += `npx:     ${report.npx ? "found" : "not found (install Node.js 20+, which ships npx)"}\n`;
  text += `server:  ${report.server.ok ? "PASS" : "FAIL"}  ${report.server.detail}\n`;
  const next = report.hosts.filter((h) => h.installed).map((h) => h.host);
  if (next.length > 0) text += `\nnext: pyro host print-config ${next[0]}   (or pyro host connect claude-code|codex)\n`;
  return text;
}

export class HostDoctorCommand extends PyroCommand {
  static override paths = [["host", "doctor"]];

  static override usage = Command.Usage({
    category: "MCP",
    description: "check the agent hosts here and that pyro's MCP server starts",
    details: `
      Reports which agent hosts are installed (their CLIs on PATH: \`claude\`, \`codex\`, \`opencode\`, \`cursor\`, \`code\`; Claude Desktop by its config directory), whether \`npx\` is on PATH (every host config starts pyro with \`npx -y pyro-mcp mcp serve\`), and whether this pyro's \`mcp serve\` starts and answers an MCP \`initialize\` within 10 s.

      Exits 1 when \`npx\` is missing or the server check fails.
    `,
    examples: [
      ["Check the hosts", "$0 host doctor"],
      ["As JSON", "$0 host doctor --json"],
    ],
  });

  protected async perform(out: Output): Promise<number> {
    const env = this.context.env;
    const [hosts, npx, server] = await Promise.all([
      hostPresence(env),
      findOnPath("npx", env.PATH).then((path) => path !== undefined),
      checkServer(serverArgv()),
    ]);
    const report: HostDoctorReport = { hosts, npx, server };
    out.result(report, { stdout: render(report) });
    out.status({
      installed: hosts.filter((h) => h.installed).length,
      npx,
      server: server.ok,
    });
    if (!npx) out.problem("npx is not on PATH; install Node.js 20 or later, which ships npx");
    if (!server.ok) out.problem(`pyro mcp serve did not start: ${server.detail}`);
    return npx && server.ok ? 0 : 1;
  }
}
