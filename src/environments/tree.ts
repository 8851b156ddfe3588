// Owns whole-tree operations on environment directories: the content digest recorded in the
// manifest, disk usage for prune, and removal that never descends into a mount left behind by a
// killed build (mmdebstrap bind-mounts /dev, /proc and /sys into its target).
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, type Stats } from "node:fs";
import { lstat, readdir, readFile, readlink, rename, rm } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface TreeDigest {
  /** "sha256:<hex>" over every entry's path, type, mode, owner, size and content or link target. */
  digest: string;
  /** Apparent size of the regular files, each hard-linked inode counted once. */
  sizeBytes: number;
  fileCount: number;
}

/** Runs at most `n` tasks at once; tasks queue in order. */
function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((r) => queue.push(r));
    active++;
    try {
      return await task();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}

/**
 * Visits every entry below `root` (not root itself) with its lstat, directories before their
 * children, leaving out `skip`ped subtrees. Symlinks are never followed. `limit` bounds the
 * concurrent filesystem calls.
 */
async function walk(
  root: string,
  visit: (rel: string, st: Stats) => Promise<void> | void,
  limit: <T>(task: () => Promise<T>) => Promise<T>,
  skip: (rel: string) => boolean = () => false,
): Promise<void> {
  const visitDir = async (rel: string): Promise<void> => {
    const names = await limit(() => readdir(rel ? join(root, rel) : root));
    await Promise.all(
      names.map(async (name) => {
        const childRel = rel ? `${rel}/${name}` : name;
        if (skip(childRel)) return;
        const st = await limit(() => lstat(join(root, childRel)));
        await visit(childRel, st);
        if (st.isDirectory()) await visitDir(childRel);
      }),
    );
  };
  await visitDir("");
}

function typeOf(st: Stats): string {
  if (st.isFile()) return "f";
  if (st.isDirectory()) return "d";
  if (st.isSymbolicLink()) return "l";
  if (st.isCharacterDevice()) return "c";
  if (st.isBlockDevice()) return "b";
  if (st.isFIFO()) return "p";
  return "s";
}

/** Files up to this size are read whole; bigger ones are streamed to keep memory flat. */
const WHOLE_READ_MAX = 4 * 1024 * 1024;

async function hashFile(path: string, size: number): Promise<string> {
  const h = createHash("sha256");
  if (size <= WHOLE_READ_MAX) {
    h.update(await readFile(path));
  } else {
    for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer);
  }
  return h.digest("hex");
}

/**
 * Digests a tree deterministically: the same files, modes and owners give the same digest on any
 * filesystem (directory sizes and timestamps are left out because they vary with history).
 * Subtrees in `exclude` (relative paths) are left out entirely, of the size and count too.
 */
export async function digestTree(
  root: string,
  opts: { exclude?: readonly string[]; concurrency?: number } = {},
): Promise<TreeDigest> {
  const exclude = (opts.exclude ?? []).map((p) => p.replace(/^\/+|\/+$/g, ""));
  const excluded = (rel: string) => exclude.some((e) => rel === e || rel.startsWith(`${e}/`));
  const limit = limiter(opts.concurrency ?? 32);
  const records: [string, string][] = [];
  const contentByInode = new Map<string, Promise<string>>();
  const seenInodes = new Set<string>();
  let sizeBytes = 0;
  let fileCount = 0;

  await walk(
    root,
    async (rel, st) => {
      if (st.isFile()) {
        fileCount++;
        const ino = `${st.dev}:${st.ino}`;
        if (!seenInodes.has(ino)) {
          seenInodes.add(ino);
          sizeBytes += st.size;
        }
      }
      const type = typeOf(st);
      let extra = "";
      if (type === "f") {
        const ino = `${st.dev}:${st.ino}`;
        let content = contentByInode.get(ino);
        if (!content) {
          content = limit(() => hashFile(join(root, rel), st.size));
          contentByInode.set(ino, content);
        }
        extra = await content;
      } else if (type === "l") {
        extra = await limit(() => readlink(join(root, rel)));
      } else if (type === "c" || type === "b") {
        extra = String(st.rdev);
      }
      const size = type === "f" || type === "l" ? st.size : 0;
      records.push([rel, JSON.stringify([rel, type, (st.mode & 0o7777).toString(8), st.uid, st.gid, size, extra])]);
    },
    limit,
    excluded,
  );

  records.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const h = createHash("sha256");
  for (const [, line] of records) h.update(`${line}\n`);
  return { digest: `sha256:${h.digest("hex")}`, sizeBytes, fileCount };
}

/** Bytes the tree occupies on disk (allocated blocks), each hard-linked inode counted once. */
export async function diskUsage(root: string): Promise<number> {
  let top: Stats;
  try {
    top = await lstat(root);
  } catch {
    return 0;
  }
  let bytes = top.blocks * 512;
  if (!top.isDirectory()) return bytes;
  const seen = new Set<string>();
  await walk(
    root,
    (_rel, st) => {
      const ino = `${st.dev}:${st.ino}`;
      if (st.nlink > 1 && !st.isDirectory()) {
        if (seen.has(ino)) return;
        seen.add(ino);
      }
      bytes += st.blocks * 512;
    },
    limiter(16),
  ).catch(() => {});
  return bytes;
}

/** Mount points at or below `dir`, deepest first, from this process's mount namespace. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const base = resolve(dir);
  const text = await readFile("/proc/self/mountinfo", "utf8").catch(() => "");
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) =>
      (line.split(" ")[4] ?? "").replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))),
    )
    .filter((m) => m === base || m.startsWith(base + sep))
    .sort((a, b) => b.length - a.length);
}

/**
 * `rm -rf`, but first detaches any mount inside the tree: deleting through a leftover bind mount
 * of /dev or /sys would reach the host's own files.
 */
export async function removeTree(dir: string): Promise<void> {
  const mounts = await mountsUnder(dir);
  for (const m of mounts) {
    await run("umount", ["--lazy", m]).catch(() => {});
  }
  if ((await mountsUnder(dir)).length > 0) {
    throw new Error(`refusing to remove ${dir}: mounts inside it could not be detached (${mounts.join(", ")})`);
  }
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * Puts staging in final's place. An existing final is first renamed to `old`, so a crash between the
 * two renames leaves debris under a name the next run clears, never a half-old, half-new tree.
 */
export async function swapDirectory(staging: string, final: string, old: string): Promise<void> {
  const hadOld = await rename(final, old).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return false;
      throw err;
    },
  );
  try {
    await rename(staging, final);
  } catch (err) {
    if (hadOld) await rename(old, final).catch(() => {});
    throw err;
  }
  if (hadOld) await removeTree(old);
}
