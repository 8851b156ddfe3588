// The `pyro host` onramp: every host's print-config text parses in its own format and starts the
// same server command; connect prints or runs the host's `mcp add` (against a fake CLI on PATH);
// host doctor's presence and server checks against fake programs (the real server needs a build).
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, describe, it } from "node:test";
import {
  CONNECTABLE_HOSTS,
  connectCommand,
  HOSTS,
  printConfig,
  type ServerCommand,
  serverCommand,
} from "../../src/cli/commands/host/config.js";
import { checkServer, hostPresence } from "../../src/cli/commands/host/doctor.js";
import { runCli } from "../../src/cli/run-cli.js";
import { PyroError } from "../../src/contract/errors.js";
import type { ManagerApi } from "../../src/sdk/manager.js";

const temps: string[] = [];
after(async () => {
  await Promise.all(temps.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "pyro-test-"));
  temps.push(dir);
  return dir;
}

/** An executable shell script `name` in `dir`. */
async function fakeProgram(dir: string, name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

class Capture extends Writable {
  text = "";
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/** A manager that fails the test if any host command opens it. */
const NO_MANAGER = new Proxy({} as ManagerApi, {
  get(_target, prop) {
    if (prop === "then") return undefined;
    throw new Error(`host commands must not use the manager (touched ${String(prop)})`);
  },
});

async function cli(argv: string[], env: Record<string, string | undefined> = {}) {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await runCli(argv, { manager: NO_MANAGER, stdout, stderr, env, interactive: false });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** The command and args a host's config text starts, parsed the way that host parses it. */
function parsedCommand(host: string, text: string): ServerCommand {
  switch (host) {
    case "claude-desktop":
    case "cursor": {
      const server = JSON.parse(text).mcpServers.pyro;
      return { command: server.command, args: server.args };
    }
    case "vscode": {
      const server = JSON.parse(text).servers.pyro;
      assert.equal(server.type, "stdio");
      return { command: server.command, args: server.args };
    }
    case "opencode": {
      const config = JSON.parse(text);
      assert.equal(config.$schema, "https://opencode.ai/config.json");
      const server = config.mcp.pyro;
      assert.equal(server.type, "local");
      assert.equal(server.enabled, true);
      const [command, ...args] = server.command as string[];
      return { command: command ?? "", args };
    }
    case "codex": {
      const lines = text.trimEnd().split("\n");
      assert.equal(lines[0], "[mcp_servers.pyro]");
      const command = lines.find((l) => l.startsWith("command = "));
      const args = lines.find((l) => l.startsWith("args = "));
      assert.ok(command && args, text);
      assert.match(args, /^args = \[("[^"]*"(, )?)*\]$/);
      return {
        command: JSON.parse(command.slice("command = ".length)),
        args: JSON.parse(args.slice("args = ".length)),
      };
    }
    case "claude-code": {
      assert.ok(text.endsWith("\n") && !text.trimEnd().includes("\n"), "one shell line");
      const words = text.trim().split(" ");
      assert.deepEqual(words.slice(0, 5), ["claude", "mcp", "add", "pyro", "--"]);
      const [command, ...args] = words.slice(5);
      return { command: command ?? "", args };
    }
    default:
      throw new Error(`no parser for ${host}`);
  }
}

describe("host config", () => {
  it("serverCommand starts pyro-mcp's MCP server through npx", () => {
    assert.deepEqual(serverCommand(), { command: "npx", args: ["-y", "pyro-mcp", "mcp", "serve"] });
    assert.deepEqual(serverCommand({ profile: "vm-run" }).args, [
      "-y",
      "pyro-mcp",
      "mcp",
      "serve",
      "--profile",
      "vm-run",
    ]);
  });

  for (const host of HOSTS) {
    it(`${host}: the text parses in its format and runs serverCommand`, () => {
      const config = printConfig(host);
      assert.equal(config.host, host);
      assert.ok(config.path_hint.length > 0);
      assert.equal(config.format, host === "codex" ? "toml" : host === "claude-code" ? "shell" : "json");
      assert.deepEqual(parsedCommand(host, config.text), serverCommand());

      const full = printConfig(host, { profile: "workspace-full" });
      const parsed = parsedCommand(host, full.text);
      assert.deepEqual(parsed, serverCommand({ profile: "workspace-full" }));
      assert.deepEqual(parsed.args.slice(-2), ["--profile", "workspace-full"]);
    });
  }

  it("gives the exact texts the hosts document", () => {
    assert.equal(
      printConfig("codex").text,
      '[mcp_servers.pyro]\ncommand = "npx"\nargs = ["-y", "pyro-mcp", "mcp", "serve"]\n',
    );
    assert.equal(printConfig("claude-code").text, "claude mcp add pyro -- npx -y pyro-mcp mcp serve\n");
    assert.equal(printConfig("claude-code").path_hint, "(run in your shell)");
    assert.equal(printConfig("vscode").path_hint, ".vscode/mcp.json");
    assert.equal(printConfig("opencode").path_hint, "opencode.json");
    assert.equal(printConfig("codex").path_hint, "~/.codex/config.toml");
    assert.match(printConfig("claude-desktop").path_hint, /claude_desktop_config\.json \(macOS\)/);
    assert.match(printConfig("cursor").path_hint, /\.cursor\/mcp\.json/);
  });

  it("rejects an unknown host with INVALID_ARGUMENT naming the hosts", () => {
    assert.throws(
      () => printConfig("zed"),
      (err: unknown) =>
        err instanceof PyroError && err.code === "INVALID_ARGUMENT" && HOSTS.every((h) => err.message.includes(h)),
    );
  });

  it("connectCommand is each host CLI's `mcp add`", () => {
    assert.deepEqual(connectCommand("claude-code"), [
      "claude",
      "mcp",
      "add",
      "pyro",
      "--",
      "npx",
      "-y",
      "pyro-mcp",
      "mcp",
      "serve",
    ]);
    assert.deepEqual(connectCommand("codex"), [
      "codex",
      "mcp",
      "add",
      "pyro",
      "--",
      "npx",
      "-y",
      "pyro-mcp",
      "mcp",
      "serve",
    ]);
    assert.deepEqual(connectCommand("codex", { profile: "vm-run" }).slice(-2), ["--profile", "vm-run"]);
    assert.deepEqual([...CONNECTABLE_HOSTS], ["claude-code", "codex"]);
    assert.throws(() => connectCommand("cursor"), /print-config cursor/);
    assert.throws(() => connectCommand("zed"), /claude-desktop, cursor/);
  });
});

describe("pyro host print-config", () => {
  it("prints the text on stdout and the path hint in the status line", async () => {
    const { code, stdout, stderr } = await cli(["host", "print-config", "cursor", "--launcher", "npx"]);
    assert.equal(code, 0, stderr);
    assert.equal(stdout, printConfig("cursor").text);
    assert.match(stderr, /^\[host print-config\] host=cursor format=json path=".cursor\/mcp.json \(project\)/);
  });

  it("--json is the payload", async () => {
    const { code, stdout } = await cli(["host", "print-config", "claude-desktop", "--json", "--launcher", "npx"]);
    assert.equal(code, 0);
    const payload = JSON.parse(stdout);
    assert.deepEqual(payload, printConfig("claude-desktop"));
    assert.deepEqual(Object.keys(payload), ["format", "host", "path_hint", "text"]);
    assert.deepEqual(JSON.parse(payload.text).mcpServers.pyro, serverCommand());
  });

  it("--profile reaches the args", async () => {
    const { code, stdout } = await cli([
      "host",
      "print-config",
      "vscode",
      "--profile",
      "workspace-full",
      "--launcher",
      "npx",
    ]);
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(stdout).servers.pyro.args.slice(-2), ["--profile", "workspace-full"]);
  });

  it("an unknown host or profile is a usage error (exit 2)", async () => {
    const bad = await cli(["host", "print-config", "zed"]);
    assert.equal(bad.code, 2);
    assert.equal(bad.stdout, "");
    for (const host of HOSTS) assert.ok(bad.stderr.includes(host), bad.stderr);

    const json = await cli(["host", "print-config", "zed", "--json"]);
    assert.equal(json.code, 2);
    assert.equal(JSON.parse(json.stdout).error.code, "INVALID_ARGUMENT");

    const profile = await cli(["host", "print-config", "cursor", "--profile", "everything", "--launcher", "npx"]);
    assert.equal(profile.code, 2);
    assert.match(profile.stderr, /--profile/);
  });
});

describe("pyro host connect", () => {
  it("--dry-run prints the exact command and runs nothing", async () => {
    const dir = await tempDir();
    await fakeProgram(dir, "claude", `touch ${join(dir, "ran")}`);
    const { code, stdout, stderr } = await cli(["host", "connect", "claude-code", "--dry-run", "--launcher", "npx"], {
      PATH: dir,
    });
    assert.equal(code, 0, stderr);
    assert.equal(stdout, "claude mcp add pyro -- npx -y pyro-mcp mcp serve\n");
    assert.match(stderr, /ran=false/);
    await assert.rejects(readFile(join(dir, "ran")));

    const json = await cli(["host", "connect", "codex", "--dry-run", "--json", "--launcher", "npx"], { PATH: dir });
    assert.equal(json.code, 0);
    assert.deepEqual(JSON.parse(json.stdout), {
      command: "codex mcp add pyro -- npx -y pyro-mcp mcp serve",
      host: "codex",
      ran: false,
      reason: "--dry-run",
    });
  });

  it("prints the command when the host CLI is not on PATH", async () => {
    const empty = await tempDir();
    const { code, stdout, stderr } = await cli(
      ["host", "connect", "codex", "--profile", "vm-run", "--launcher", "npx"],
      { PATH: empty },
    );
    assert.equal(code, 0, stderr);
    assert.equal(stdout, "codex mcp add pyro -- npx -y pyro-mcp mcp serve --profile vm-run\n");
    assert.match(stderr, /codex CLI not found on PATH; run the printed command/);

    const json = await cli(["host", "connect", "claude-code", "--json", "--launcher", "npx"], { PATH: empty });
    assert.equal(json.code, 0);
    const payload = JSON.parse(json.stdout);
    assert.equal(payload.ran, false);
    assert.equal(payload.reason, "claude not found on PATH");
  });

  it("runs the host CLI found on PATH with the right argv", async () => {
    const dir = await tempDir();
    const record = join(dir, "argv.txt");
    await fakeProgram(dir, "claude", `printf '%s\\n' "$@" > '${record}'\necho "Added stdio MCP server pyro"`);
    const { code, stdout, stderr } = await cli(["host", "connect", "claude-code", "--launcher", "npx"], { PATH: dir });
    assert.equal(code, 0, stderr);
    assert.equal(stdout, "Added stdio MCP server pyro\n");
    assert.match(stderr, /ran=true exit_code=0/);
    assert.deepEqual((await readFile(record, "utf8")).trimEnd().split("\n"), [
      "mcp",
      "add",
      "pyro",
      "--",
      "npx",
      "-y",
      "pyro-mcp",
      "mcp",
      "serve",
    ]);

    const json = await cli(
      ["host", "connect", "claude-code", "--json", "--profile", "workspace-full", "--launcher", "npx"],
      { PATH: dir },
    );
    assert.equal(json.code, 0);
    assert.deepEqual(JSON.parse(json.stdout), {
      command: "claude mcp add pyro -- npx -y pyro-mcp mcp serve --profile workspace-full",
      exit_code: 0,
      host: "claude-code",
      output: "Added stdio MCP server pyro\n",
      ran: true,
    });
    assert.deepEqual((await readFile(record, "utf8")).trimEnd().split("\n").slice(-2), ["--profile", "workspace-full"]);
  });

  it("reports the host CLI's failure (exit 1)", async () => {
    const dir = await tempDir();
    await fakeProgram(dir, "codex", `echo "pyro already exists" >&2\nexit 3`);
    const { code, stdout } = await cli(["host", "connect", "codex", "--json", "--launcher", "npx"], { PATH: dir });
    assert.equal(code, 1);
    const payload = JSON.parse(stdout);
    assert.equal(payload.ran, true);
    assert.equal(payload.exit_code, 3);
    assert.equal(payload.output, "pyro already exists\n");
  });

  it("other hosts are a usage error pointing at print-config", async () => {
    const { code, stderr } = await cli(["host", "connect", "cursor", "--launcher", "npx"], { PATH: "" });
    assert.equal(code, 2);
    assert.match(stderr, /pyro host print-config cursor/);
    const unknown = await cli(["host", "connect", "zed"], { PATH: "" });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /claude-code or codex/);
    assert.match(unknown.stderr, /print-config/);
  });
});

describe("pyro host doctor checks", () => {
  it("finds host CLIs on PATH and Claude Desktop by its config dir", async () => {
    const dir = await tempDir();
    const home = await tempDir();
    await fakeProgram(dir, "claude", "exit 0");
    await fakeProgram(dir, "code", "exit 0");
    await mkdir(join(dir, "codex")); // a directory is not a program
    const before = await hostPresence({ PATH: dir, HOME: home });
    assert.deepEqual(
      before.map((h) => [h.host, h.cli, h.installed]),
      [
        ["claude-desktop", null, false],
        ["cursor", "cursor", false],
        ["vscode", "code", true],
        ["opencode", "opencode", false],
        ["codex", "codex", false],
        ["claude-code", "claude", true],
      ],
    );
    await mkdir(join(home, ".config", "Claude"), { recursive: true });
    const afterDir = await hostPresence({ PATH: dir, HOME: home });
    assert.equal(afterDir.find((h) => h.host === "claude-desktop")?.installed, true);
  });

  const node = process.execPath;
  const answer = (name: string) => `
    process.stdin.once("data", (line) => {
      const req = JSON.parse(String(line));
      process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: 99, method: "noise" }) + "\\n");
      process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: req.id, result: {
        protocolVersion: req.params.protocolVersion, capabilities: {},
        serverInfo: { name: ${JSON.stringify(name)}, version: "9.9.9" } } }) + "\\n");
    });
    setInterval(() => {}, 1000);`;

  it("passes when the server answers initialize as pyro, and kills it", async () => {
    const check = await checkServer([node, "-e", answer("pyro")], 5000);
    assert.deepEqual(check, { ok: true, detail: "pyro 9.9.9 answered initialize (protocol 2025-06-18)" });
  });

  it("fails on another server, an early exit, silence or a missing program", async () => {
    const other = await checkServer([node, "-e", answer("other")], 5000);
    assert.equal(other.ok, false);
    assert.match(other.detail, /"other", not pyro/);

    const exits = await checkServer([node, "-e", "console.error('no engine here'); process.exit(4)"], 5000);
    assert.equal(exits.ok, false);
    assert.match(exits.detail, /exited \(code 4\).*no engine here/);

    const silent = await checkServer([node, "-e", "setInterval(() => {}, 1000)"], 300);
    assert.deepEqual(silent, { ok: false, detail: "no answer to initialize within 0.3 s" });

    const missing = await checkServer(["/nonexistent/pyro-test-server"], 5000);
    assert.equal(missing.ok, false);
    assert.match(missing.detail, /cannot start/);
  });
});
