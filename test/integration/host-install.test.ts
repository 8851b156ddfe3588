// Acceptance of the host onramp from an installed package: `npm pack` this build, `npm install -g
// --prefix` the tarball, then register the installed pyro with real Claude Code and Gemini CLI
// programs the way a user does (the line print-config prints, `pyro host connect`) and read each
// host's own `mcp list`. Needs the npm registry (the package's dependencies and both host CLIs);
// the hosts run with a throwaway HOME and no API keys, pyro with the environments the tests use.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { resolvePaths } from "../../src/util/paths.js";
import { PACKAGE_ROOT } from "../../src/version.js";

/** Host CLI versions this onramp was checked against (`mcp add`'s argv, `mcp list`'s lines). */
const CLAUDE_CODE = "@anthropic-ai/claude-code@2.1.332";
const GEMINI_CLI = "@google/gemini-cli@0.61.0";

const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), "pyro-test-host-install-"));
const prefix = join(work, "prefix");
const tools = join(work, "tools");
const home = join(work, "home");
const project = join(work, "project");
/** The installed `pyro`, where `npm install -g --prefix` links it (not on the hosts' PATH). */
const pyro = join(prefix, "bin", "pyro");

// What the hosts (and the pyro servers they start) see: nothing of this machine's HOME, PATH or
// keys; the state dir is this suite's own, the environment cache the one the other tests use.
const hostEnv: Record<string, string> = {
  PATH: [join(tools, "node_modules", ".bin"), dirname(process.execPath), "/usr/sbin", "/usr/bin", "/sbin", "/bin"].join(
    ":",
  ),
  HOME: home,
  XDG_CONFIG_HOME: join(home, ".config"),
  XDG_CACHE_HOME: join(home, ".cache"),
  XDG_DATA_HOME: join(home, ".local", "share"),
  XDG_STATE_HOME: join(home, ".local", "state"),
  PYRO_STATE_DIR: join(work, "state"),
  PYRO_CACHE_DIR: resolvePaths().cacheDir,
  ...(process.env.PYRO_ENGINE ? { PYRO_ENGINE: process.env.PYRO_ENGINE } : {}),
  // Claude Code: no update checks or telemetry from a test.
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
};

/** A host-side command as the user runs it in `project`. */
function host(file: string, args: string[]) {
  return run(file, args, { cwd: project, env: hostEnv, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
}

/** npm with this machine's own config and cache (its registry settings live in the real HOME). */
function npm(args: string[], cwd: string) {
  return run("npm", [...args, "--no-audit", "--no-fund"], { cwd, timeout: 600_000, maxBuffer: 16 * 1024 * 1024 });
}

before(
  async () => {
    assert.ok(existsSync(join(PACKAGE_ROOT, "dist", "bin", "pyro.mjs")), "run npm run build first");
    for (const dir of [tools, home, project]) mkdirSync(dir, { recursive: true });
    const { stdout } = await npm(["pack", "--json", "--pack-destination", work], PACKAGE_ROOT);
    const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
    await Promise.all([
      npm(["install", "-g", "--prefix", prefix, join(work, filename)], work),
      // Of the host CLIs' install scripts only Claude Code's is needed (it puts its native binary in
      // place); the others compile node-pty, which `mcp add` and `mcp list` do not use.
      npm(["install", "--prefix", tools, "--ignore-scripts", CLAUDE_CODE, GEMINI_CLI], work).then(() =>
        run(process.execPath, [join(tools, "node_modules", "@anthropic-ai", "claude-code", "install.cjs")], {
          cwd: tools,
        }),
      ),
    ]);
  },
  { timeout: 900_000 },
);

after(() => {
  rmSync(work, { recursive: true, force: true });
});

describe("pyro installed from its npm pack tarball, connected to real hosts", () => {
  it("print-config prints the installed pyro bin, and host doctor starts it and passes", async () => {
    const { stdout } = await host(pyro, ["host", "print-config", "claude-code"]);
    assert.equal(stdout, `claude mcp add pyro -- ${pyro} mcp serve\n`);

    const doctor = await host(pyro, ["host", "doctor"]);
    assert.match(doctor.stdout, new RegExp(`^command: ${pyro} mcp serve$`, "m"));
    assert.match(doctor.stdout, /^server: {2}PASS {2}pyro \S+ answered initialize and listed \d+ tools$/m);
  });

  it("Claude Code: the printed `claude mcp add` line registers pyro and `claude mcp list` shows it connected", async () => {
    const { stdout: line } = await host(pyro, ["host", "print-config", "claude-code"]);
    const added = await host("sh", ["-c", line]);
    assert.match(added.stdout, /Added stdio MCP server pyro/);

    const { stdout } = await host("claude", ["mcp", "list"]);
    assert.ok(stdout.split("\n").includes(`pyro: ${pyro} mcp serve - ✔ Connected`), stdout);
  });

  it("Gemini CLI: `pyro host connect gemini` registers pyro and `gemini mcp list` shows it connected", async () => {
    const connect = await host(pyro, ["host", "connect", "gemini"]);
    assert.match(connect.stderr, /ran=true exit_code=0/);
    const { stdout: snippet } = await host(pyro, ["host", "print-config", "gemini"]);
    const settings = JSON.parse(readFileSync(join(home, ".gemini", "settings.json"), "utf8"));
    assert.deepEqual(settings.mcpServers.pyro, JSON.parse(snippet).mcpServers.pyro);

    // Gemini CLI starts stdio servers only in folders the user trusted; its trust prompt writes this.
    writeFileSync(join(home, ".gemini", "trustedFolders.json"), JSON.stringify({ [project]: "TRUST_FOLDER" }));
    // This Gemini CLI writes the list on stderr.
    const { stderr } = await host("gemini", ["mcp", "list"]);
    assert.ok(stderr.split("\n").includes(`✓ pyro: ${pyro} mcp serve (stdio) - Connected`), stderr);
  });
});
