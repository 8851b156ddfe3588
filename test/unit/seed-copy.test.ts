// Unit tests for a directory seed copied straight into a layer on the host: it must give what the
// packed seed (tar through extraction) gives — the same entries, modes less setuid and setgid,
// file times, hard links, and the same things left out. (A seed the user cannot read is refused by
// name: rootless.test.ts, as an ordinary user.)

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmod, link, lstat, mkdir, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { copySeed, sourceStream } from "../../src/manager/sources.js";
import { extractArchive } from "../../src/util/archive.js";
import { walkTree } from "../../src/util/tree-walk.js";
import { tempDir } from "../helpers/scratch.js";

/** Every entry with what a guest would see of it: type, mode, size, link target, the second of a
 * file's mtime (tar keeps whole seconds; the copy keeps all of it, checked below). */
async function described(dir: string): Promise<string[]> {
  const lines: string[] = [];
  for await (const { entry, stat } of walkTree(dir)) {
    const time = entry.type === "file" ? ` t=${stat.mtimeMs / 1000n}` : "";
    lines.push(
      `${entry.path} ${entry.type} ${entry.mode.toString(8)} ${entry.size} ${entry.link_target ?? ""}${time} uid=${stat.uid}`,
    );
  }
  return lines;
}

async function makeSource(root: string): Promise<string> {
  const src = join(root, "src");
  await mkdir(join(src, "pkg", "lib", "deep"), { recursive: true });
  await mkdir(join(src, "private"), { mode: 0o700 });
  await writeFile(join(src, "pkg", "index.js"), "module.exports = 1;\n");
  await writeFile(join(src, "pkg", "lib", "deep", "data.bin"), Buffer.alloc(300_000, 7));
  await writeFile(join(src, "run.sh"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
  await writeFile(join(src, "suid"), "x", { mode: 0o755 });
  await chmod(join(src, "suid"), 0o6755);
  await writeFile(join(src, "private", "key"), "k", { mode: 0o600 });
  await writeFile(join(src, "empty"), "");
  await utimes(join(src, "pkg", "index.js"), 1_000_000_000, 1_000_000_000.5);
  await link(join(src, "pkg", "index.js"), join(src, "hard"));
  await symlink("pkg/index.js", join(src, "inside"));
  await symlink("../../run.sh", join(src, "pkg", "lib", "up"));
  await symlink("/etc/passwd", join(src, "absolute"));
  await symlink("../outside", join(src, "escapes"));
  execFileSync("mkfifo", [join(src, "fifo")]);
  for (let i = 0; i < 300; i++) await writeFile(join(src, "pkg", `m${i}.txt`), `${i}\n`);
  return src;
}

test("a copied seed is the tree a packed seed extracts to: modes less setuid, times, links, and what is left out", async () => {
  const root = await tempDir();
  const src = await makeSource(root);
  const source = { kind: "directory" as const, path: src };

  const packedSkipped: string[] = [];
  const packed = await extractArchive(sourceStream(source, packedSkipped, "seed_path"), join(root, "packed"));
  const copiedSkipped: string[] = [];
  const copied = await copySeed(source, join(root, "copied"), copiedSkipped, "seed_path");

  assert.equal(copied.entry_count, packed.entry_count);
  assert.deepEqual(copiedSkipped.sort(), packedSkipped.sort());
  assert.deepEqual(copiedSkipped.sort(), ["absolute -> /etc/passwd", "escapes -> ../outside", "fifo"]);
  assert.deepEqual(await described(join(root, "copied")), await described(join(root, "packed")));

  const copiedSuid = await lstat(join(root, "copied", "suid"));
  assert.equal(copiedSuid.mode & 0o7777, 0o755, "setuid and setgid are dropped");
  assert.equal((await lstat(join(root, "copied", "private"))).mode & 0o777, 0o700);
  const [hard, index] = await Promise.all([
    lstat(join(root, "copied", "hard")),
    lstat(join(root, "copied", "pkg", "index.js")),
  ]);
  assert.equal(hard.ino, index.ino, "a hard link stays one file");
  assert.equal(index.mtimeMs, 1_000_000_000_500);
});
