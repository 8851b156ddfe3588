// The committed lock file must let `npm ci` install on a clean clone: npm refuses a lock that lacks
// an entry for any optional dependency a package names, even one for another platform (biome's and
// esbuild's per-platform binaries), and some npm versions drop those entries when they rewrite it.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

const lock = JSON.parse(readFileSync("package-lock.json", "utf8")) as { packages: Record<string, LockEntry> };
const manifest = JSON.parse(readFileSync("package.json", "utf8")) as LockEntry;

/** Where npm would find `name` when required from the package at `from`: its own node_modules, then each parent's. */
function resolves(from: string, name: string): boolean {
  let dir = from;
  for (;;) {
    if (lock.packages[`${dir ? `${dir}/` : ""}node_modules/${name}`]) return true;
    if (dir === "") return false;
    const at = dir.lastIndexOf("/node_modules/");
    dir = at === -1 ? "" : dir.slice(0, at);
  }
}

describe("package-lock.json", () => {
  it("has an entry for every optional dependency of every package, whatever its platform", () => {
    const missing = Object.entries(lock.packages).flatMap(([path, entry]) =>
      Object.keys(entry.optionalDependencies ?? {})
        .filter((name) => !resolves(path, name))
        .map((name) => `${path || "(root)"} -> ${name}`),
    );
    assert.deepEqual(missing, [], "run `npm install` with npm ≥ 11 and commit the lock file");
  });

  it("pins what package.json asks for", () => {
    const root = lock.packages[""];
    assert.deepEqual(root?.dependencies, manifest.dependencies);
    assert.deepEqual(root?.devDependencies, manifest.devDependencies);
  });
});
