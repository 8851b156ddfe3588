// Owns workspace-tree logic that the guest agent and the host share, so both sides read a tree the
// same way: the manifest (every entry's type, mode, size, content digest and link target, in one
// order), and the decoding of a bounded read as text.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import pMap from "p-map";
import type { TreeEntry } from "../contract/tree.js";
import { guestDir, utf8Names } from "./names.js";

/** How many entries are examined or hashed at once: enough to hide latency, few enough for fds. */
const IO_CONCURRENCY = 16;

/** Code-unit order: the same order on both sides of the channel, and git's for ASCII names. */
export function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The manifest of a directory: the guest agent's answer to tree.manifest, and the host's of a
 * baseline, snapshot or stopped layer. A name that is not UTF-8 is refused, naming where it is. */
export async function manifestOfDir(dir: string): Promise<TreeEntry[]> {
  const entries: TreeEntry[] = [];
  const files: TreeEntry[] = [];
  const pending = [""];
  while (pending.length > 0) {
    const rel = pending.pop()!;
    const names = await utf8Names(join(dir, rel), guestDir(rel));
    const infos = await pMap(
      names,
      async (name) => {
        const path = rel === "" ? name : `${rel}/${name}`;
        return { path, info: await lstat(join(dir, path)) };
      },
      { concurrency: IO_CONCURRENCY },
    );
    for (const { path, info } of infos) {
      const mode = info.mode & 0o7777;
      if (info.isSymbolicLink()) {
        const target = await readlink(join(dir, path));
        entries.push({ path, type: "symlink", mode, size: Buffer.byteLength(target), link_target: target });
      } else if (info.isDirectory()) {
        entries.push({ path, type: "directory", mode, size: 0 });
        pending.push(path);
      } else if (info.isFile()) {
        const entry: TreeEntry = { path, type: "file", mode, size: info.size };
        entries.push(entry);
        files.push(entry);
      } else {
        entries.push({ path, type: "other", mode, size: 0 });
      }
    }
  }
  await pMap(
    files,
    async (entry) => {
      entry.sha256 = await sha256File(join(dir, entry.path), entry.size);
    },
    { concurrency: IO_CONCURRENCY },
  );
  return entries.sort((a, b) => comparePaths(a.path, b.path));
}

export async function sha256File(path: string, size: number): Promise<string> {
  const hash = createHash("sha256");
  // Small files in one read; big ones streamed so a large workspace cannot balloon host memory.
  if (size <= 4 * 1024 * 1024) return hash.update(await readFile(path)).digest("hex");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** `bytes` as UTF-8 text, or undefined when they are not text (a NUL, or invalid UTF-8). A read cut
 * at a size bound may end inside a character: with `cut`, up to 3 trailing bytes are dropped. */
export function decodeText(bytes: Buffer, cut: boolean): string | undefined {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  for (let back = 0; back <= (cut ? Math.min(3, bytes.length) : 0); back++) {
    try {
      const slice = bytes.subarray(0, bytes.length - back);
      if (slice.includes(0)) return undefined;
      return decoder.decode(slice);
    } catch {}
  }
  return undefined;
}
