// The layers of src/ and who may import whom (docs/architecture.md), read from the imports
// themselves: a forbidden direction or an import cycle fails here, not in a review.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const SRC = join(dirname(fileURLToPath(import.meta.url)), "../../src");

/** Each layer (a directory of src/, or "." for its top-level files) and the layers it may import. */
const MAY_IMPORT: Record<string, readonly string[]> = {
  contract: [],
  util: ["contract"],
  channel: ["contract", "util"],
  // The guest agent: what it shares with the host is the protocol (channel), the contract and util.
  agent: ["channel", "contract", "util"],
  rootless: ["contract", "util"],
  environments: ["contract", "util", "rootless", "."],
  egress: ["contract", "util", "."],
  engines: ["channel", "contract", "egress", "environments", "rootless", "util", "."],
  supervisor: ["channel", "contract", "egress", "engines", "environments", "rootless", "util", "."],
  manager: ["channel", "contract", "egress", "engines", "environments", "rootless", "supervisor", "util", "."],
  sdk: ["contract", "manager", "util", "."],
  mcp: ["contract", "environments", "rootless", "sdk", "util", "."],
  cli: ["contract", "mcp", "rootless", "sdk", "util", "."],
  ".": ["contract", "mcp", "sdk"],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** Every relative module a file imports: static, type-only, re-exports and dynamic import(). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+"(\.[^"]+)"/gms),
    ...text.matchAll(/\bimport\(\s*"(\.[^"]+)"\s*\)/g),
  ].map((m) => m[1]!);
  return specs.map((spec) => normalize(join(dirname(file), spec)).replace(/\.js$/, ".ts"));
}

function layerOf(file: string): string {
  const rel = relative(SRC, file);
  return rel.includes("/") ? rel.split("/")[0]! : ".";
}

const FILES = sourceFiles(SRC);
const GRAPH = new Map(FILES.map((file) => [file, importsOf(file)]));

describe("layering of src/", () => {
  it("knows every layer, and reads imports (the check has something to check)", () => {
    const layers = new Set(FILES.map(layerOf));
    assert.deepEqual([...layers].sort(), Object.keys(MAY_IMPORT).sort());
    const edges = [...GRAPH.values()].reduce((n, deps) => n + deps.length, 0);
    assert.ok(edges > 500, `only ${edges} imports found`);
  });

  it("imports only in the allowed directions", () => {
    const forbidden: string[] = [];
    for (const [file, deps] of GRAPH) {
      const from = layerOf(file);
      for (const dep of deps) {
        const to = layerOf(dep);
        if (to !== from && !MAY_IMPORT[from]!.includes(to)) {
          forbidden.push(`${relative(SRC, file)} (${from}) imports ${relative(SRC, dep)} (${to})`);
        }
      }
    }
    assert.deepEqual(forbidden, [], "see MAY_IMPORT in this test and docs/architecture.md");
  });

  it("has no import cycle between files, type-only imports included", () => {
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const stack: string[] = [];
    const visit = (file: string): void => {
      state.set(file, "open");
      stack.push(file);
      for (const dep of GRAPH.get(file) ?? []) {
        if (!GRAPH.has(dep)) continue;
        if (state.get(dep) === "open") {
          cycles.push(
            stack
              .slice(stack.indexOf(dep))
              .concat(dep)
              .map((f) => relative(SRC, f))
              .join(" -> "),
          );
        } else if (!state.has(dep)) visit(dep);
      }
      stack.pop();
      state.set(file, "done");
    };
    for (const file of FILES) if (!state.has(file)) visit(file);
    assert.deepEqual(cycles, []);
  });

  it("resolves every relative import to a file that exists", () => {
    const missing = [...GRAPH].flatMap(([file, deps]) =>
      deps.filter((dep) => !GRAPH.has(dep)).map((dep) => `${relative(SRC, file)} -> ${relative(SRC, dep)}`),
    );
    assert.deepEqual(missing, []);
  });
});
