// The `pyro host` onramp: every host's print-config text parses in its own format and starts the
// same server command; the default launcher finds this installation's `pyro` bin (fake npm
// layouts); connect prints or runs the host's `mcp add` (against a fake CLI on PATH); host doctor's
// presence check, and its server check with a real MCP client against fake servers.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Writable } from "node:stream";
import { after, describe, it } from "node:test";
import {
  CONNECTABLE_HOSTS,
  connectCommand,
  HOSTS,
  installedBin,
  PYRO_ENTRY,
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
    case "cursor":
    case "gemini": {
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

/** A fake pyro package at `root`: package.json and an executable dist/bin/pyro.mjs. */
async function fakePackage(root: string): Promise<string> {
  const entry = join(root, "dist", "bin", "pyro.mjs");
  await mkdir(dirname(entry), { recursive: true });
  await writeFile(join(root, "package.json"), '{"name":"pyro-mcp","bin":{"pyro":"dist/bin/pyro.mjs"}}\n');
  await writeFile(entry, "#!/usr/bin/env node\n");
  await chmod(entry, 0o755);
  return entry;
}

/** A symlink `link` to `target`, as npm makes bins. */
async function binLink(target: string, link: string): Promise<string> {
  await mkdir(dirname(link), { recursive: true });
  await symlink(target, link);
  return link;
}

describe("host config", () => {
  it("serverCommand: bin (the default) from a checkout is this Node.js and this checkout's dist/bin/pyro.mjs", () => {
    const local = { command: process.execPath, args: [PYRO_ENTRY, "mcp", "serve"] };
    assert.equal(installedBin({ pathVar: "" }), undefined, "a checkout has no installed bin");
    assert.deepEqual(serverCommand({ pathVar: "" }), local);
    assert.deepEqual(serverCommand({ launcher: "bin", pathVar: "" }), local);
    assert.deepEqual(serverCommand({ launcher: "local" }), local);
    assert.deepEqual(serverCommand({ launcher: "local", profile: "vm-run" }).args, [
      PYRO_ENTRY,
      "mcp",
      "serve",
      "--profile",
      "vm-run",
    ]);
  });

  it("serverCommand: npx runs the package from the npm registry", () => {
    assert.deepEqual(serverCommand({ launcher: "npx" }), { command: "npx", args: ["-y", "pyro-mcp", "mcp", "serve"] });
    assert.deepEqual(serverCommand({ launcher: "npx", profile: "vm-run" }).args, [
      "-y",
      "pyro-mcp",
      "mcp",
      "serve",
      "--profile",
      "vm-run",
    ]);
  });

  it("installedBin finds the bin of an `npm install -g --prefix DIR` even off PATH", async () => {
    const prefix = await tempDir();
    const root = join(prefix, "lib", "node_modules", "pyro-mcp");
    await fakePackage(root);
    const bin = await binLink("../lib/node_modules/pyro-mcp/dist/bin/pyro.mjs", join(prefix, "bin", "pyro"));
    assert.equal(installedBin({ packageRoot: root, execPath: "/nonexistent/node", pathVar: "" }), bin);
  });

  it("installedBin finds a project install's node_modules/.bin/pyro", async () => {
    const project = await tempDir();
    const root = join(project, "node_modules", "pyro-mcp");
    await fakePackage(root);
    const bin = await binLink("../pyro-mcp/dist/bin/pyro.mjs", join(project, "node_modules", ".bin", "pyro"));
    assert.equal(installedBin({ packageRoot: root, execPath: "/nonexistent/node", pathVar: "" }), bin);
  });

  it("installedBin finds the bin next to node or on PATH, only if it leads to this package", async () => {
    const root = await tempDir();
    const entry = await fakePackage(root);
    const nodeDir = await tempDir();
    const nextToNode = await binLink(entry, join(nodeDir, "pyro"));
    assert.equal(installedBin({ packageRoot: root, execPath: join(nodeDir, "node"), pathVar: "" }), nextToNode);

    const other = await tempDir();
    await fakePackage(other);
    const otherBin = await tempDir();
    await binLink(join(other, "dist", "bin", "pyro.mjs"), join(otherBin, "pyro"));
    const onPath = await tempDir();
    const mine = await binLink(entry, join(onPath, "pyro"));
    const search = { packageRoot: root, execPath: "/nonexistent/node" };
    assert.equal(installedBin({ ...search, pathVar: `relative:${otherBin}:${onPath}` }), mine);
    assert.equal(installedBin({ ...search, pathVar: otherBin }), undefined, "another installation's pyro");
    assert.equal(installedBin({ packageRoot: join(root, "missing"), pathVar: onPath }), undefined);
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

      const npx = printConfig(host, { launcher: "npx" });
      assert.deepEqual(parsedCommand(host, npx.text), serverCommand({ launcher: "npx" }));
    });
  }

  it("gives the exact texts the hosts document", () => {
    const npx = { launcher: "npx" } as const;
    assert.equal(
      printConfig("codex", npx).text,
      '[mcp_servers.pyro]\ncommand = "npx"\nargs = ["-y", "pyro-mcp", "mcp", "serve"]\n',
    );
    assert.equal(printConfig("claude-code", npx).text, "claude mcp add pyro -- npx -y pyro-mcp mcp serve\n");
    assert.equal(
      printConfig("gemini", { launcher: "local" }).text,
      `${JSON.stringify({ mcpServers: { pyro: { command: process.execPath, args: [PYRO_ENTRY, "mcp", "serve"] } } }, null, 2)}\n`,
    );
    assert.equal(printConfig("claude-code").path_hint, "(run in your shell)");
    assert.equal(printConfig("vscode").path_hint, ".vscode/mcp.json");
    assert.equal(printConfig("opencode").path_hint, "opencode.json");
    assert.equal(printConfig("codex").path_hint, "~/.codex/config.toml");
    assert.equal(printConfig("gemini").path_hint, "~/.gemini/settings.json (or .gemini/settings.json in a project)");
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
    const npx = { launcher: "npx" } as const;
    const serve = ["npx", "-y", "pyro-mcp", "mcp", "serve"];
    assert.deepEqual(connectCommand("claude-code", npx), ["claude", "mcp", "add", "pyro", "--", ...serve]);
    assert.deepEqual(connectCommand("codex", npx), ["codex", "mcp", "add", "pyro", "--", ...serve]);
    // Gemini's yargs wants the command as a positional before `--`, and user scope (not the project's).
    assert.deepEqual(connectCommand("gemini", npx), [
      "gemini",
      "mcp",
      "add",
      "--scope",
      "user",
      "pyro",
      "npx",
      "--",
      "-y",
      "pyro-mcp",
      "mcp",
      "serve",
    ]);
    assert.deepEqual(connectCommand("gemini", { launcher: "local" }).slice(6), [
      process.execPath,
      "--",
      PYRO_ENTRY,
      "mcp",
      "serve",
    ]);
    assert.deepEqual(connectCommand("codex", { profile: "vm-run" }).slice(-2), ["--profile", "vm-run"]);
    assert.deepEqual([...CONNECTABLE_HOSTS], ["claude-code", "codex", "gemini"]);
    assert.throws(() => connectCommand("cursor"), /print-config cursor/);
    assert.throws(() => connectCommand("zed"), /claude-desktop, cursor/);
  });
});

describe("pyro host print-config", () => {
  it("prints the text on stdout and the path hint in the status line", async () => {
    const { code, stdout, stderr } = await cli(["host", "print-config", "cursor", "--launcher", "npx"]);
    assert.equal(code, 0, stderr);
    assert.equal(stdout, printConfig("cursor", { launcher: "npx" }).text);
    assert.match(stderr, /^\[host print-config\] host=cursor format=json path=".cursor\/mcp.json \(project\)/);
  });

  it("--json is the payload", async () => {
    const { code, stdout } = await cli(["host", "print-config", "claude-desktop", "--json", "--launcher", "npx"]);
    assert.equal(code, 0);
    const payload = JSON.parse(stdout);
    assert.deepEqual(payload, printConfig("claude-desktop", { launcher: "npx" }));
    assert.deepEqual(Object.keys(payload), ["format", "host", "path_hint", "text"]);
    assert.deepEqual(JSON.parse(payload.text).mcpServers.pyro, serverCommand({ launcher: "npx" }));
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

  it("by default prints the command that runs this installation", async () => {
    const empty = await tempDir();
    const { code, stdout } = await cli(["host", "print-config", "claude-code"], { PATH: empty });
    assert.equal(code, 0);
    assert.equal(stdout, `claude mcp add pyro -- ${process.execPath} ${PYRO_ENTRY} mcp serve\n`);
  });

  it("by default prints the installed pyro bin found on PATH", {
    skip: !existsSync(PYRO_ENTRY) && "needs npm run build",
  }, async () => {
    const bin = await tempDir();
    await binLink(PYRO_ENTRY, join(bin, "pyro"));
    const { code, stdout } = await cli(["host", "print-config", "gemini", "--profile", "vm-run"], { PATH: bin });
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(stdout).mcpServers.pyro, {
      command: join(bin, "pyro"),
      args: ["mcp", "serve", "--profile", "vm-run"],
    });
  });

  it("an unknown host, profile or launcher is a usage error (exit 2)", async () => {
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

    const launcher = await cli(["host", "print-config", "cursor", "--launcher", "global"]);
    assert.equal(launcher.code, 2);
    assert.match(launcher.stderr, /--launcher must be one of bin, local, npx \(got global\)/);
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

  it("runs gemini mcp add with user scope and the command before --", async () => {
    const dir = await tempDir();
    const record = join(dir, "argv.txt");
    await fakeProgram(
      dir,
      "gemini",
      `printf '%s\\n' "$@" > '${record}'\necho 'MCP server "pyro" added to user settings. (stdio)' >&2`,
    );
    const { code, stdout, stderr } = await cli(["host", "connect", "gemini", "--launcher", "local"], { PATH: dir });
    assert.equal(code, 0, stderr);
    assert.equal(stdout, 'MCP server "pyro" added to user settings. (stdio)\n');
    assert.deepEqual((await readFile(record, "utf8")).trimEnd().split("\n"), [
      "mcp",
      "add",
      "--scope",
      "user",
      "pyro",
      process.execPath,
      "--",
      PYRO_ENTRY,
      "mcp",
      "serve",
    ]);
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
    assert.match(unknown.stderr, /connect takes claude-code, codex, gemini/);
    assert.match(unknown.stderr, /print-config/);
  });
});

const node = process.execPath;

/** A fake MCP server on stdio (JSON-RPC lines) that answers initialize as `name` and lists `tools`. */
async function fakeServer(name: string, tools: string[] = ["vm_run"]): Promise<ServerCommand> {
  const dir = await tempDir();
  const file = join(dir, "server.cjs");
  await writeFile(
    file,
    `require("node:readline").createInterface({ input: process.stdin }).on("line", (line) => {
      const req = JSON.parse(line);
      if (req.id === undefined) return;
      const result = req.method === "initialize"
        ? { protocolVersion: req.params.protocolVersion, capabilities: { tools: {} },
            serverInfo: { name: ${JSON.stringify(name)}, version: "9.9.9" } }
        : { tools: ${JSON.stringify(tools)}.map((name) => ({ name, inputSchema: { type: "object" } })) };
      process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: req.id, result }) + "\\n");
    });`,
  );
  return { command: node, args: [file] };
}

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
        ["gemini", "gemini", false],
      ],
    );
    await mkdir(join(home, ".config", "Claude"), { recursive: true });
    const afterDir = await hostPresence({ PATH: dir, HOME: home });
    assert.equal(afterDir.find((h) => h.host === "claude-desktop")?.installed, true);
  });

  it("passes when the server answers initialize as pyro and lists its tools", async () => {
    const check = await checkServer(await fakeServer("pyro", ["vm_run", "workspace_create"]), { timeoutMs: 5000 });
    assert.deepEqual(check, { ok: true, detail: "pyro 9.9.9 answered initialize and listed 2 tools" });
  });

  it("fails on another server, no tools, an early exit, silence, noise or a missing program", async () => {
    const other = await checkServer(await fakeServer("other"), { timeoutMs: 5000 });
    assert.deepEqual(other, { ok: false, detail: 'initialize answered by "other", not pyro' });

    const empty = await checkServer(await fakeServer("pyro", []), { timeoutMs: 5000 });
    assert.deepEqual(empty, { ok: false, detail: "the server listed no tools" });

    const exits = await checkServer(
      { command: node, args: ["-e", "console.error('no engine here'); process.exit(4)"] },
      { timeoutMs: 5000 },
    );
    assert.deepEqual(exits, { ok: false, detail: "the server exited before answering: no engine here" });

    const silent = await checkServer(
      { command: node, args: ["-e", "setInterval(() => {}, 1000)"] },
      { timeoutMs: 300 },
    );
    assert.deepEqual(silent, { ok: false, detail: "no answer within 0.3 s" });

    const noise = await checkServer(
      { command: node, args: ["-e", "console.log('pyro is starting'); setInterval(() => {}, 1000)"] },
      { timeoutMs: 1000 },
    );
    assert.equal(noise.ok, false);
    assert.match(noise.detail, /^no answer within 1 s; it wrote something that is not JSON-RPC \(Unexpected token/);

    const missing = await checkServer({ command: "/nonexistent/pyro-test-server", args: [] }, { timeoutMs: 5000 });
    assert.equal(missing.ok, false);
    assert.match(missing.detail, /^cannot start \/nonexistent\/pyro-test-server: .*ENOENT/);
  });
});

describe("pyro host doctor", () => {
  it("starts exactly the printed command and passes when it answers", async () => {
    const dir = await tempDir();
    const server = await fakeServer("pyro");
    const record = join(dir, "argv.txt");
    await fakeProgram(dir, "npx", `printf '%s\\n' "$@" > '${record}'\nexec '${node}' '${server.args[0]}'`);
    await fakeProgram(dir, "gemini", "exit 0");
    const { code, stdout, stderr } = await cli(["host", "doctor", "--launcher", "npx", "--profile", "vm-run"], {
      PATH: dir,
    });
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^ {2}gemini +gemini +installed$/m);
    assert.match(stdout, /^command: npx -y pyro-mcp mcp serve --profile vm-run$/m);
    assert.match(stdout, /^server: {2}PASS {2}pyro 9\.9\.9 answered initialize and listed 1 tools$/m);
    assert.match(stdout, /^next: pyro host connect gemini$/m);
    assert.match(stderr, /^\[host doctor\] installed=1 launcher=npx server=true$/m);
    assert.deepEqual((await readFile(record, "utf8")).trimEnd().split("\n"), [
      "-y",
      "pyro-mcp",
      "mcp",
      "serve",
      "--profile",
      "vm-run",
    ]);
  });

  it("fails (exit 1) naming the command and the fix when it does not answer", async () => {
    const dir = await tempDir();
    await fakeProgram(
      dir,
      "npx",
      "echo 'npm error 404 Not Found - GET https://registry.npmjs.org/pyro-mcp' >&2\nexit 1",
    );
    const { code, stdout, stderr } = await cli(["host", "doctor", "--launcher", "npx"], { PATH: dir });
    assert.equal(code, 1);
    assert.match(stdout, /^server: {2}FAIL {2}the server exited before answering: npm error 404/m);
    assert.match(
      stderr,
      /^error: `npx -y pyro-mcp mcp serve` did not answer as an MCP server \(the server exited before answering: npm error 404 .*\); npx could not run the pyro-mcp package from the npm registry; drop --launcher npx to use this installation's pyro$/m,
    );

    const json = await cli(["host", "doctor", "--launcher", "npx", "--json"], { PATH: dir });
    assert.equal(json.code, 1);
    const report = JSON.parse(json.stdout);
    assert.equal(report.command, "npx -y pyro-mcp mcp serve");
    assert.equal(report.launcher, "npx");
    assert.equal(report.server.ok, false);
    assert.match(report.fix, /drop --launcher npx/);

    const missing = await cli(["host", "doctor", "--launcher", "npx"], { PATH: await tempDir() });
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /^error: `npx -y pyro-mcp mcp serve` did not answer as an MCP server \(cannot start npx: .*ENOENT/m,
    );
  });
});
