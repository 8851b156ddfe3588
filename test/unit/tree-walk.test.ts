// Unit tests for reading big trees as streams: the tree order a sorted walk yields, the walk itself
// against the whole-tree manifest, the layer's digest index (what it lets diff skip, and what it
// must never let through), and the comparison of two streams. Real directories, no sandboxes.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmod, mkdir, readFile, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import type { TreeEntry } from "../../src/contract/tree.js";
import { compareTreeStreams, compareTrees } from "../../src/manager/diff.js";
import { layerTree } from "../../src/manager/tree-index.js";
import { manifestOfDir } from "../../src/util/tree.js";
import { compareTreeOrder, readNdjson, walkTree } from "../../src/util/tree-walk.js";
import { fullGc, tempDir } from "../helpers/scratch.js";

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}

const sha = (text: string) => createHash("sha256").update(text).digest("hex");

test("tree order puts a directory's contents right after it, before a sibling like 'a-b'", () => {
  const paths = ["a-b", "a/b", "a", "a.b", "a/b/c", "ab", "a/-", "b"];
  assert.deepEqual(paths.sort(compareTreeOrder), ["a", "a/-", "a/b", "a/b/c", "a-b", "a.b", "ab", "b"]);
  fc.assert(
    fc.property(fc.array(fc.stringMatching(/^[a-c/.-]{1,6}$/), { maxLength: 20 }), (list) => {
      const sorted = [...list].sort(compareTreeOrder);
      // Component by component, in code-unit order: the order of a sorted depth-first walk.
      const byParts = [...list].sort((x, y) => {
        const [xs, ys] = [x.split("/"), y.split("/")];
        for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
          if (xs[i] !== ys[i]) return xs[i]! < ys[i]! ? -1 : 1;
        }
        return xs.length - ys.length;
      });
      assert.deepEqual(sorted, byParts);
    }),
  );
});

test("the walk yields what manifestOfDir lists, in tree order, without digests", async () => {
  const dir = await tempDir();
  for (const d of ["a", "a/b", "a-b", "z"]) await mkdir(join(dir, d), { recursive: true });
  for (const f of ["a/b/c.txt", "a/x", "a-b/y", "a.b", "top"]) await writeFile(join(dir, f), f);
  await chmod(join(dir, "top"), 0o755);
  await symlink("../elsewhere", join(dir, "z/link"));
  const walked = (await collect(walkTree(dir))).map((w) => w.entry);
  assert.deepEqual(
    walked.map((e) => e.path),
    ["a", "a/b", "a/b/c.txt", "a/x", "a-b", "a-b/y", "a.b", "top", "z", "z/link"],
  );
  const whole = await manifestOfDir(dir);
  const withoutDigest = whole.map(({ sha256: _, ...rest }) => rest);
  assert.deepEqual(
    [...walked].sort((x, y) => (x.path < y.path ? -1 : 1)),
    withoutDigest,
    "the same entries, types, modes, sizes and link targets",
  );
});

test("the layer index: unchanged files keep their recorded digest, a changed one is read again", async () => {
  const root = await tempDir();
  const layer = join(root, "layer");
  const index = join(root, "index.ndjson");
  await mkdir(join(layer, "src"), { recursive: true });
  for (const name of ["one", "two", "three"]) await writeFile(join(layer, "src", name), name);
  // A digest is recorded only for a file that settled before the walk (the racy-write guard).
  await new Promise((r) => setTimeout(r, 1100));
  const first = await collect(layerTree(layer, index));
  assert.equal(first.find((e) => e.path === "src/one")?.sha256, sha("one"));
  const lines = await collect(readNdjson<{ p: string; h: string }>(index, () => new Error("bad")));
  assert.deepEqual(
    lines.map((l) => l.p),
    ["src/one", "src/three", "src/two"],
  );

  // The index is what the next walk believes for a file whose stat did not change: plant a digest
  // to see it used, and change another file with the same size and mtime to see it read again.
  const planted = lines.map((l) => (l.p === "src/one" ? { ...l, h: "planted" } : l));
  await writeFile(index, planted.map((l) => `${JSON.stringify(l)}\n`).join(""));
  const stamp = new Date("2020-01-01T00:00:00Z");
  await utimes(join(layer, "src", "two"), stamp, stamp);
  await new Promise((r) => setTimeout(r, 1100));
  await collect(layerTree(layer, index));
  await writeFile(join(layer, "src", "two"), "TWO");
  await utimes(join(layer, "src", "two"), stamp, stamp);
  const second = await collect(layerTree(layer, index));
  assert.equal(second.find((e) => e.path === "src/one")?.sha256, "planted", "an unchanged stat keeps the index");
  assert.equal(second.find((e) => e.path === "src/two")?.sha256, sha("TWO"), "same size and mtime, new ctime");
  assert.equal(second.find((e) => e.path === "src/three")?.sha256, sha("three"));

  // A damaged index is only a cache: everything after the bad line is read again.
  await writeFile(index, "not json\n");
  const third = await collect(layerTree(layer, index));
  assert.equal(third.find((e) => e.path === "src/one")?.sha256, sha("one"));
  assert.match(await readFile(index, "utf8"), /"p":"src\/one"/, "the walk wrote a whole index again");
});

test("comparing two streams gives what comparing two whole manifests gives", async () => {
  const entry = (path: string, content?: string, type: TreeEntry["type"] = "file"): TreeEntry =>
    type === "file"
      ? { path, type, mode: 0o644, size: content!.length, sha256: sha(content!) }
      : { path, type, mode: 0o755, size: 0 };
  const baseline = [entry("a", "", "directory"), entry("a/x", "1"), entry("a-b", "2"), entry("gone", "3")];
  const current = [entry("a", "", "directory"), entry("a/x", "1!"), entry("a-b", "2"), entry("new", "", "directory")];
  const inOrder = (list: TreeEntry[]) => [...list].sort((x, y) => compareTreeOrder(x.path, y.path));
  async function* stream(list: TreeEntry[]) {
    yield* inOrder(list);
  }
  const streamed = await compareTreeStreams(stream(baseline), stream(current));
  assert.deepEqual(streamed.changes, await compareTrees(baseline, current));
  assert.deepEqual(
    streamed.changes.map((c) => `${c.status} ${c.path}`),
    ["modified a/x", "deleted gone", "added new"],
  );
});

test("a big tree's comparison holds only its changes", async () => {
  const count = 300_000;
  fullGc();
  const before = process.memoryUsage().heapUsed;
  let peak = before;
  async function* tree(changedEvery: number) {
    for (let i = 0; i < count; i++) {
      // Sampled as the comparison runs (a timer would not fire inside this loop of promises).
      if (i % 20_000 === 0) {
        fullGc();
        peak = Math.max(peak, process.memoryUsage().heapUsed);
      }
      const path = `d${String(Math.floor(i / 1000)).padStart(4, "0")}/f${String(i % 1000).padStart(4, "0")}`;
      const digest = changedEvery > 0 && i % changedEvery === 0 ? "changed" : "same";
      yield { path, type: "file", mode: 0o644, size: 1, sha256: digest } as TreeEntry;
    }
  }
  const { changes } = await compareTreeStreams(tree(0), tree(count / 10));
  assert.equal(changes.length, 10);
  // Two whole 300,000-entry manifests hold ~90 MB of heap; the streams hold next to nothing.
  assert.ok(peak - before < 20 * 1024 * 1024, `heap grew ${Math.round((peak - before) / 1e6)} MB`);
});
