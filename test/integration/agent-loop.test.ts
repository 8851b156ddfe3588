// An agent's whole loop on real repositories, as issue 18 asked: three small projects of the test's
// own making (a Node package tested with mocha, a Python package tested with pytest, a C library
// tested with `make test`), each seeded into a debian:12-build workspace and driven through the real
// `pyro` CLI (one process per command) or a real MCP client (`pyro mcp serve` over stdio):
// install inside the workspace, test (passing counts equal the host's), edit with patch apply, test
// again, diff (only the edit), export, reset. On gvisor under `egress` and `off`, and on qemu.
//
// Where the dependencies come from: mocha from the npm registry (so the Node project needs
// `egress`); pytest, the build tools and setuptools from the environment (so the Python and C
// projects also run with the network `off`). The host runs each suite on a clone of its own for the
// counts to compare with.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { EngineName } from "../../src/contract/schemas.js";
import {
  ExportResult,
  type NetworkPolicy,
  PatchApplyResult,
  ResetResult,
  WorkspaceDiffResult,
  WorkspaceExecResult,
  WorkspaceInfo,
} from "../../src/contract/workspace.js";
import { execToEnd } from "../helpers/exec-to-end.js";
import { PYRO_BIN, runCli, workspaceSuite } from "../helpers/workspace-suite.js";

const ENVIRONMENT = "debian:12-build";
const MOCHA = "10.8.2";

interface Project {
  name: "node" | "python" | "c";
  files: Record<string, string>;
  /** Run on the host before the first commit (the Node project commits its lock file). */
  lock?: string[];
  /** Installs the project's dependencies inside the workspace (and builds it). */
  install: string;
  test: string;
  /** The host's way to run the same suite on its clone. */
  hostTest: { install?: string[]; run: string[]; env?: Record<string, string> };
  passing: RegExp;
  /** The edit, a fix and one more test: in each file, the first text replaced by the second. */
  edit: Record<string, [string, string]>;
  /** One edited file the loop exports and compares. */
  exportPath: string;
}

const NODE: Project = {
  name: "node",
  files: {
    "package.json": `${JSON.stringify(
      {
        name: "tally",
        version: "1.0.0",
        main: "index.js",
        scripts: { test: "mocha" },
        devDependencies: { mocha: MOCHA },
      },
      null,
      2,
    )}\n`,
    "index.js": [
      "function sum(xs) {",
      "  return xs.reduce((a, b) => a + b, 0);",
      "}",
      "function mean(xs) {",
      "  return sum(xs) / xs.length;",
      "}",
      "module.exports = { sum, mean };",
      "",
    ].join("\n"),
    "test/tally.test.js": [
      'const assert = require("node:assert");',
      'const { sum, mean } = require("..");',
      'describe("tally", () => {',
      '  it("sums nothing to 0", () => assert.strictEqual(sum([]), 0));',
      '  it("sums", () => assert.strictEqual(sum([1, 2, 3]), 6));',
      '  it("sums negatives", () => assert.strictEqual(sum([-1, 1]), 0));',
      '  it("means", () => assert.strictEqual(mean([2, 4]), 3));',
      "});",
      "",
    ].join("\n"),
    ".gitignore": "node_modules/\n",
  },
  lock: ["npm", "install", "--package-lock-only", "--no-audit", "--no-fund", "--loglevel=error"],
  install: "npm ci --no-audit --no-fund",
  test: "npm test 2>&1",
  hostTest: { install: ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], run: ["npx", "mocha"] },
  passing: /(\d+) passing/,
  edit: {
    "index.js": ["return sum(xs) / xs.length;", "return xs.length === 0 ? 0 : sum(xs) / xs.length;"],
    "test/tally.test.js": ["\n});", '\n  it("means nothing to 0", () => assert.strictEqual(mean([]), 0));\n});'],
  },
  exportPath: "index.js",
};

const PYTHON: Project = {
  name: "python",
  files: {
    "pyproject.toml": [
      "[build-system]",
      'requires = ["setuptools"]',
      'build-backend = "setuptools.build_meta"',
      "",
      "[project]",
      'name = "tally"',
      'version = "1.0.0"',
      "",
    ].join("\n"),
    "src/tally/__init__.py": ["def clamp(x, lo, hi):", "    return max(lo, min(x, hi))", ""].join("\n"),
    "tests/test_tally.py": [
      "import pytest",
      "from tally import clamp",
      "",
      "",
      "@pytest.mark.parametrize('x,want', [(-5, 0), (5, 5), (50, 10)])",
      "def test_clamp(x, want):",
      "    assert clamp(x, 0, 10) == want",
      "",
    ].join("\n"),
    ".gitignore": "__pycache__/\n.pytest_cache/\n*.egg-info/\n.venv/\nbuild/\n",
  },
  // Offline too: the venv sees the environment's pytest and setuptools.
  install:
    "python3 -m venv --system-site-packages .venv && .venv/bin/pip install -q --no-index --no-build-isolation -e .",
  test: ".venv/bin/python -m pytest -q 2>&1",
  hostTest: { run: ["/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider"], env: { PYTHONPATH: "src" } },
  passing: /(\d+) passed/,
  edit: {
    "src/tally/__init__.py": ["    return", "    if lo > hi:\n        raise ValueError('lo > hi')\n    return"],
    "tests/test_tally.py": [
      "== want\n",
      "== want\n\n\ndef test_clamp_refuses_an_empty_range():\n    with pytest.raises(ValueError):\n        clamp(1, 10, 0)\n",
    ],
  },
  exportPath: "src/tally/__init__.py",
};

const C: Project = {
  name: "c",
  files: {
    "tally.h": "int tally_gcd(int a, int b);\n",
    "tally.c": [
      '#include "tally.h"',
      "",
      "int tally_gcd(int a, int b) {",
      "  while (b != 0) {",
      "    int t = a % b;",
      "    a = b;",
      "    b = t;",
      "  }",
      "  return a;",
      "}",
      "",
    ].join("\n"),
    "test_tally.c": [
      "#include <stdio.h>",
      '#include "tally.h"',
      "",
      "static int passed, failed;",
      '#define CHECK(name, cond) do { if (cond) { passed++; } else { failed++; printf("FAIL %s\\n", name); } } while (0)',
      "",
      "int main(void) {",
      '  CHECK("gcd", tally_gcd(12, 18) == 6);',
      '  CHECK("gcd with 1", tally_gcd(7, 1) == 1);',
      '  CHECK("gcd of equals", tally_gcd(9, 9) == 9);',
      '  printf("%d passed, %d failed\\n", passed, failed);',
      "  return failed != 0;",
      "}",
      "",
    ].join("\n"),
    Makefile: [
      "CFLAGS ?= -O2 -Wall",
      "",
      "all: libtally.a",
      "",
      "libtally.a: tally.o",
      "\t$(AR) rcs $@ $^",
      "",
      "test_tally: test_tally.o libtally.a",
      "\t$(CC) -o $@ $^",
      "",
      "test: test_tally",
      "\t./test_tally",
      "",
      "clean:",
      "\trm -f *.o libtally.a test_tally",
      "",
      ".PHONY: all test clean",
      "",
    ].join("\n"),
    ".gitignore": "*.o\n*.a\ntest_tally\n",
  },
  install: "make",
  test: "make test 2>&1",
  hostTest: { install: ["make", "-s"], run: ["make", "-s", "test"] },
  passing: /(\d+) passed, 0 failed/,
  edit: {
    "tally.c": ["{\n  while", "{\n  if (a < 0) a = -a;\n  if (b < 0) b = -b;\n  while"],
    "test_tally.c": ['  printf("%d passed', '  CHECK("gcd of negatives", tally_gcd(-4, 6) == 2);\n  printf("%d passed'],
  },
  exportPath: "tally.c",
};

/** The `cells`: which project runs where, through which face. Each face meets each engine. */
const CELLS: { project: Project; engine: EngineName; policy: NetworkPolicy; face: "cli" | "mcp" }[] = [
  { project: NODE, engine: "gvisor", policy: "egress", face: "cli" },
  { project: NODE, engine: "gvisor", policy: "egress", face: "mcp" },
  { project: PYTHON, engine: "gvisor", policy: "off", face: "cli" },
  { project: PYTHON, engine: "gvisor", policy: "egress", face: "mcp" },
  { project: C, engine: "gvisor", policy: "egress", face: "cli" },
  { project: C, engine: "gvisor", policy: "off", face: "mcp" },
  { project: NODE, engine: "qemu", policy: "egress", face: "mcp" },
  { project: PYTHON, engine: "qemu", policy: "off", face: "cli" },
  { project: C, engine: "qemu", policy: "egress", face: "cli" },
];

const { stateDir, host } = workspaceSuite("loop");

function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", ["-c", "user.name=pyro", "-c", "user.email=pyro@example.invalid", ...args], {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** The edited files' new contents. */
function edited(project: Project): Record<string, string> {
  return Object.fromEntries(
    Object.entries(project.edit).map(([path, [from, to]]) => {
      const text = project.files[path] as string;
      assert.ok(text.includes(from), `${project.name}: ${path} has ${JSON.stringify(from)}`);
      return [path, text.replace(from, to)];
    }),
  );
}

function writeTree(dir: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
}

/** Runs the suite on a fresh clone on the host; returns how many tests passed. */
function hostCount(project: Project, repo: string, clone: string, edit: boolean): number {
  git(host, "clone", "-q", repo, clone);
  if (edit) writeTree(clone, edited(project));
  const env = { ...process.env, ...project.hostTest.env };
  const [cmd, ...args] = project.hostTest.install ?? [];
  if (cmd) execFileSync(cmd, args, { cwd: clone, env, stdio: "pipe" });
  const [run, ...runArgs] = project.hostTest.run;
  const out = execFileSync(run as string, runArgs, { cwd: clone, env, encoding: "utf8", stdio: "pipe" });
  const count = Number(project.passing.exec(out)?.[1]);
  assert.ok(count > 0, `the host ran ${project.name}'s suite: ${out}`);
  return count;
}

interface Prepared {
  repo: string;
  patch: string;
  before: number;
  after: number;
}

const prepared = new Map<Project["name"], Prepared>();

before(() => {
  for (const project of [NODE, PYTHON, C]) {
    const repo = join(host, project.name);
    writeTree(repo, project.files);
    const [lock, ...lockArgs] = project.lock ?? [];
    if (lock) execFileSync(lock, lockArgs, { cwd: repo, stdio: "pipe" });
    git(repo, "init", "-q", "-b", "main");
    git(repo, "add", "-A");
    git(repo, "commit", "-q", "-m", "first");
    // The edit as an agent makes it: a unified diff against the seed.
    const editing = join(host, `${project.name}-edit`);
    git(host, "clone", "-q", repo, editing);
    writeTree(editing, edited(project));
    const patch = git(editing, "diff");
    prepared.set(project.name, {
      repo,
      patch,
      before: hostCount(project, repo, join(host, `${project.name}-host-before`), false),
      after: hostCount(project, repo, join(host, `${project.name}-host-after`), true),
    });
  }
});

/** What the loop needs of a face: the same steps through the CLI or through MCP tools. */
interface Face {
  create(project: Project, engine: EngineName, policy: NetworkPolicy): Promise<WorkspaceInfo>;
  exec(id: string, command: string): Promise<WorkspaceExecResult>;
  patch(id: string, patch: string): Promise<PatchApplyResult>;
  diff(id: string): Promise<WorkspaceDiffResult>;
  export(id: string, path: string, output: string): Promise<ExportResult>;
  reset(id: string): Promise<ResetResult>;
  delete(id: string): Promise<void>;
}

async function cliJson<T>(schema: { parse(v: unknown): T }, args: string[]): Promise<T> {
  // --json goes before the `--` that starts a command's words.
  const end = args.includes("--") ? args.indexOf("--") : args.length;
  const out = await runCli(stateDir, [...args.slice(0, end), "--json", ...args.slice(end)], 900_000);
  assert.equal(out.code, 0, `pyro ${args.join(" ")} exited ${out.code}: ${out.stderr}${out.stdout}`);
  return schema.parse(JSON.parse(out.stdout));
}

const cli: Face = {
  create: (project, engine, policy) =>
    cliJson(WorkspaceInfo, [
      "workspace",
      "create",
      ENVIRONMENT,
      "--seed-path",
      prepared.get(project.name)?.repo as string,
      "--engine",
      engine,
      "--network-policy",
      policy,
      "--ttl-seconds",
      "0",
    ]),
  exec: (id, command) =>
    cliJson(WorkspaceExecResult, ["workspace", "exec", id, "--timeout-seconds", "900", "--", command]),
  async patch(id, patch) {
    const file = join(host, `${id}.patch`);
    writeFileSync(file, patch);
    return cliJson(PatchApplyResult, ["workspace", "patch", "apply", id, "--patch-file", file]);
  },
  diff: (id) => cliJson(WorkspaceDiffResult, ["workspace", "diff", id]),
  export: (id, path, output) => cliJson(ExportResult, ["workspace", "export", id, path, "--output", output]),
  reset: (id) => cliJson(ResetResult, ["workspace", "reset", id]),
  async delete(id) {
    await cliJson({ parse: (v) => v }, ["workspace", "delete", id]);
  },
};

let client: Client | undefined;
let serverLog = "";

async function mcpClient(): Promise<Client> {
  if (client) return client;
  const transport = new StdioClientTransport({
    command: process.execPath,
    // workspace-full: its workspace_create takes network_policy.
    // The repositories and exports live under `host`, outside the checkout the server runs in.
    args: [PYRO_BIN, "mcp", "serve", "--profile", "workspace-full", "--allow-host-path", host],
    env: { ...process.env, PYRO_STATE_DIR: stateDir } as Record<string, string>,
    stderr: "pipe",
  });
  transport.stderr?.on("data", (chunk: Buffer) => {
    serverLog = (serverLog + chunk.toString()).slice(-20_000);
  });
  client = new Client({ name: "pyro-agent-loop", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

after(async () => {
  await client?.close();
});

async function tool<T>(schema: { parse(v: unknown): T }, name: string, args: Record<string, unknown>): Promise<T> {
  // The client's default options: its 60 s request timeout holds, so long commands come back running.
  const result = await (await mcpClient()).callTool({ name, arguments: args });
  const text = (result.content as { text?: string }[])[0]?.text ?? "";
  assert.notEqual(result.isError, true, `${name} failed: ${text}\n${serverLog}`);
  return schema.parse(result.structuredContent);
}

const mcp: Face = {
  create: (project, engine, policy) =>
    tool(WorkspaceInfo, "workspace_create", {
      environment: ENVIRONMENT,
      seed_path: prepared.get(project.name)?.repo,
      engine,
      network_policy: policy,
      ttl_seconds: 0,
    }),
  // As an agent does: a command still running after wait_seconds is collected with exec_wait.
  exec: (id, command) => execToEnd(tool, { workspace: id, command, timeout_seconds: 900, wait_seconds: 20 }),
  patch: (id, patch) => tool(PatchApplyResult, "workspace_patch_apply", { workspace: id, patch }),
  diff: (id) => tool(WorkspaceDiffResult, "workspace_diff", { workspace: id }),
  export: (id, path, output) => tool(ExportResult, "workspace_export", { workspace: id, path, output_path: output }),
  reset: (id) => tool(ResetResult, "workspace_reset", { workspace: id }),
  async delete(id) {
    await tool({ parse: (v) => v }, "workspace_delete", { workspace: id });
  },
};

describe("an agent's loop on three real repositories: install, test, patch, test, diff, export, reset", () => {
  for (const { project, engine, policy, face } of CELLS) {
    it(`${project.name} on ${engine}, network ${policy}, through ${face === "cli" ? "the CLI" : "MCP"}`, {
      timeout: 1_200_000,
    }, async () => {
      const via = face === "cli" ? cli : mcp;
      const { patch, before: passingBefore, after: passingAfter } = prepared.get(project.name) as Prepared;
      const info = await via.create(project, engine, policy);
      assert.equal(info.engine, engine);
      const id = info.workspace_id;
      try {
        const step = async (what: string, command: string) => {
          const started = performance.now();
          const out = await via.exec(id, command);
          console.log(
            `${project.name}/${engine}/${policy}/${face}: ${what} ${Math.round(performance.now() - started)} ms`,
          );
          assert.equal(out.exit_code, 0, `${what} (${command}) exited ${out.exit_code}: ${out.stdout}${out.stderr}`);
          return out.stdout;
        };
        await step("install", project.install);
        const count = (text: string) => Number(project.passing.exec(text)?.[1]);
        assert.equal(count(await step("test", project.test)), passingBefore, "the same tests pass as on the host");

        const applied = await via.patch(id, patch);
        assert.deepEqual(applied.files.map((c) => c.path).sort(), Object.keys(project.edit).sort());
        assert.equal(count(await step("test after the edit", project.test)), passingAfter);

        // Only the edit: no dependencies, build output, caches or .git internals.
        const diff = await via.diff(id);
        assert.deepEqual(
          diff.files.map((f) => `${f.status} ${f.path}`),
          Object.keys(project.edit)
            .sort()
            .map((p) => `modified ${p}`),
        );
        assert.ok((diff.ignored ?? 0) > 0, "the install and test runs' output is counted as ignored");
        const check = join(host, `${id}-check`);
        git(host, "clone", "-q", prepared.get(project.name)?.repo as string, check);
        execFileSync("git", ["apply", "-"], { cwd: check, input: diff.patch });
        for (const [path, text] of Object.entries(edited(project)))
          assert.equal(readFileSync(join(check, path), "utf8"), text);

        const output = join(host, `${id}-export`);
        const exported = await via.export(id, project.exportPath, output);
        assert.equal(exported.artifact_type, "file");
        assert.equal(readFileSync(output, "utf8"), edited(project)[project.exportPath]);

        await via.reset(id);
        const clean = await via.diff(id);
        assert.equal(clean.changed, false, "reset brings back the seed: no edit, no installed dependencies");
        assert.equal(clean.ignored ?? 0, 0);
      } finally {
        await via.delete(id);
      }
    });
  }
});
