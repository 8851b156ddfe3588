// Unit tests for moving big trees through tar on the host: the order of writes that share a path
// (pyro replaces node-tar's path reservations) and the memory a pack and an extraction hold.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { extractArchive } from "../../src/util/archive.js";
import { packFiles } from "../../src/util/pack.js";
import { fullGc, tempDir } from "../helpers/scratch.js";

test("an archive naming a path twice ends as its last entry says, links included", async () => {
  const root = await tempDir();
  const src = join(root, "src");
  await mkdir(join(src, "d"), { recursive: true });
  const archive = join(root, "twice.tar");
  // GNU tar appends a second copy of `a` (and of d/x) after the first, then a hard link to `a`.
  await writeFile(join(src, "a"), "first");
  await writeFile(join(src, "d", "x"), "first x");
  execFileSync("tar", ["cf", archive, "-C", src, "a", "d"]);
  await writeFile(join(src, "a"), "second");
  await writeFile(join(src, "d", "x"), "second x");
  execFileSync("tar", ["rf", archive, "-C", src, "a", "d/x"]);
  execFileSync("ln", [join(src, "a"), join(src, "b")]);
  execFileSync("tar", ["rf", archive, "-C", src, "a", "b"]);
  const listed = execFileSync("tar", ["tf", archive], { encoding: "utf8" }).trim().split("\n");
  assert.deepEqual(listed, ["a", "d/", "d/x", "a", "d/x", "a", "b"]);

  for (let round = 0; round < 20; round++) {
    const dest = join(root, `out${round}`);
    await extractArchive(createReadStream(archive), dest);
    assert.equal(await readFile(join(dest, "a"), "utf8"), "second");
    assert.equal(await readFile(join(dest, "d", "x"), "utf8"), "second x");
    assert.equal(await readFile(join(dest, "b"), "utf8"), "second");
    assert.equal((await stat(join(dest, "b"))).ino, (await stat(join(dest, "a"))).ino, "b is a hard link to a");
  }
});

test("a pack of 20,000 files into an extraction holds a bounded heap", async () => {
  const root = await tempDir();
  const src = join(root, "src");
  for (let d = 0; d < 20; d++) {
    await mkdir(join(src, `d${d}`), { recursive: true });
    for (let f = 0; f < 1000; f++) await writeFile(join(src, `d${d}`, `f${f}`), `${d}/${f}`);
  }
  fullGc();
  const before = process.memoryUsage().heapUsed;
  let peak = before;
  const sampler = setInterval(() => {
    fullGc();
    peak = Math.max(peak, process.memoryUsage().heapUsed);
  }, 200);
  try {
    const result = await extractArchive(packFiles({ cwd: src, portable: true }, ["."]), join(root, "dest"));
    assert.equal(result.entry_count, 20_000 + 20 + 1);
  } finally {
    clearInterval(sampler);
  }
  assert.equal(await readFile(join(root, "dest", "d19", "f999"), "utf8"), "19/999");
  // node-tar's breadth-first pack and its reservations held ~4 KB per entry (80 MB here).
  assert.ok(peak - before < 30 * 1024 * 1024, `heap grew ${Math.round((peak - before) / 1e6)} MB`);
});

test("a pack with an empty file, then a file with a second name further on, then directories, ends", {
  timeout: 20_000,
}, async () => {
  // node-tar 7.5 opened its `jobs` entries outside its step and never piped the head: the pack
  // stalled after `hard` and the seed, export or sync push waited for ever.
  const root = await tempDir();
  const src = join(root, "src");
  await mkdir(join(src, "pkg", "lib"), { recursive: true });
  await mkdir(join(src, "private"), { mode: 0o700 });
  await writeFile(join(src, "empty"), "");
  await writeFile(join(src, "pkg", "index.js"), "module.exports = 1;\n");
  execFileSync("ln", [join(src, "pkg", "index.js"), join(src, "hard")]);
  for (let round = 0; round < 10; round++) {
    const dest = join(root, `out${round}`);
    const result = await extractArchive(packFiles({ cwd: src, portable: true }, ["."]), dest);
    assert.equal(result.entry_count, 7);
    assert.equal((await stat(join(dest, "hard"))).ino, (await stat(join(dest, "pkg", "index.js"))).ino);
  }
});
