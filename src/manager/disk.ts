// Owns the disk tools: reading a stopped workspace's /workspace straight from its host directory
// (the sandbox's upper layer) without starting a sandbox: guest-path resolution confined to the
// layer, list, bounded UTF-8 read, and export of the layer as a raw ext4 image. Symlinks in the
// layer are GUEST symlinks: they are resolved in guest space and never followed out of /workspace.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, link as hardLink, lstat, mkdir, open, readlink, rename, rm } from "node:fs/promises";
import { basename, dirname, join, posix, resolve } from "node:path";
import { promisify } from "node:util";
import { PyroError } from "../contract/errors.js";
import { describeEntry, type TreeEntryInfo } from "../util/entries.js";
import { unwritableTarget } from "../util/host-access.js";
import { utf8Names } from "../util/names.js";
import { decodeText } from "../util/tree.js";
import { findExecutable } from "../util/which.js";

const run = promisify(execFile);

export const GUEST_WORKSPACE = "/workspace";
/** Symlinks followed while resolving one path before giving up, as the kernel's ELOOP. */
export const MAX_SYMLINK_HOPS = 40;
export const MAX_LIST_ENTRIES = 10_000;
const MIB = 1024 * 1024;

export interface LayerList {
  path: string;
  recursive: boolean;
  entries: TreeEntryInfo[];
  truncated: boolean;
}

export interface LayerRead {
  path: string;
  content: string;
  size_bytes: number;
  truncated: boolean;
}

export interface LayerImage {
  output_path: string;
  size_bytes: number;
  entry_count: number;
}

export interface Resolved {
  /** Where the resolved path lives on the host, inside the layer. */
  hostPath: string;
  /** The resolved guest path (every followed symlink replaced by its target). */
  guestPath: string;
}

function outside(userPath: string, why: string): PyroError {
  return new PyroError(
    "PATH_OUTSIDE_WORKSPACE",
    `${userPath} ${why}; paths must stay inside /workspace (relative paths are resolved from /workspace)`,
  );
}

function notFound(userPath: string): PyroError {
  return new PyroError(
    "FILE_NOT_FOUND",
    `${userPath} does not exist in the workspace; list its directory to see what is there`,
  );
}

function components(path: string): string[] {
  return path.split("/").filter((c) => c !== "" && c !== ".");
}

function guestOf(stack: string[]): string {
  return stack.length === 0 ? "/" : `/${stack.join("/")}`;
}

/** The caller's path made absolute with `..` removed lexically; it must name /workspace or below. */
function lexicalGuestPath(guestPath: string): string {
  if (guestPath.includes("\0")) throw new PyroError("INVALID_ARGUMENT", "paths must not contain NUL bytes");
  const lexical = posix.normalize(posix.isAbsolute(guestPath) ? guestPath : posix.join(GUEST_WORKSPACE, guestPath));
  const abs = lexical.length > 1 ? lexical.replace(/\/+$/, "") : lexical;
  if (abs !== GUEST_WORKSPACE && !abs.startsWith(`${GUEST_WORKSPACE}/`))
    throw outside(guestPath, "is outside /workspace");
  return abs;
}

/**
 * Resolves a guest path to where it lives inside the layer, as the guest kernel would resolve it,
 * but refusing anything that leaves /workspace: `..` is normalised lexically first, then each
 * component is lstat'ed and each symlink is resolved in guest space (absolute targets are guest
 * paths, relative ones are relative to the link's guest directory). The last component is only
 * followed if followFinal; a missing path is refused.
 */
export async function resolveInLayer(
  layer: string,
  guestPath: string,
  opts: { followFinal: boolean },
): Promise<Resolved> {
  const abs = lexicalGuestPath(guestPath);

  // The resolved guest path so far, as components from the guest root; stack[0] is "workspace".
  let stack: string[] = [];
  // Components still to resolve; `final` marks the caller's last component (the one followFinal is about).
  const queue = components(abs).map((name, i, all) => ({ name, final: i === all.length - 1 }));
  let hops = 0;
  // The symlink whose body is being resolved, named when that body climbs out.
  let lastLink = "";
  while (queue.length > 0) {
    const { name, final } = queue.shift()!;
    if (name === "..") {
      if (stack.length <= 1)
        throw outside(guestPath, `goes through the symlink ${lastLink}, which climbs out of /workspace`);
      stack.pop();
      continue;
    }
    if (stack.length === 0) {
      // Only reachable at the start or after an absolute symlink target: it must name /workspace.
      if (name !== "workspace") throw outside(guestPath, "leads outside /workspace");
      stack = ["workspace"];
      continue;
    }
    const host = join(layer, ...stack.slice(1), name);
    const info = await lstat(host).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return undefined;
      if (err.code === "ENOTDIR") return undefined;
      throw err;
    });
    const here = guestOf([...stack, name]);
    if (!info) throw notFound(guestPath === here ? guestPath : `${guestPath} (${here})`);
    if (info.isSymbolicLink() && (!final || opts.followFinal)) {
      if (++hops > MAX_SYMLINK_HOPS) {
        throw new PyroError(
          "INVALID_ARGUMENT",
          `${guestPath} goes through more than ${MAX_SYMLINK_HOPS} symlinks (a symlink loop?); fix the links or name the file directly`,
        );
      }
      const target = await readlink(host);
      lastLink = `${here} -> ${target}`;
      if (posix.isAbsolute(target)) {
        const normal = posix.normalize(target);
        if (normal !== GUEST_WORKSPACE && !normal.startsWith(`${GUEST_WORKSPACE}/`)) {
          throw outside(guestPath, `goes through the symlink ${here} -> ${target}, which leads outside /workspace`);
        }
        stack = [];
      }
      // The link body is resolved in full, its last component included: only the caller's final is optional.
      queue.unshift(...components(target).map((c) => ({ name: c, final: false })));
      continue;
    }
    if (queue.length > 0 && !info.isDirectory() && !info.isSymbolicLink()) {
      throw new PyroError("INVALID_ARGUMENT", `${guestPath}: ${here} is not a directory; check the path`);
    }
    stack.push(name);
  }
  if (stack.length === 0) throw outside(guestPath, "leads outside /workspace");
  return { hostPath: join(layer, ...stack.slice(1)), guestPath: guestOf(stack) };
}

const byPath = (a: { path: string }, b: { path: string }): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/**
 * Lists a directory of the layer (or the one entry of a file or symlink), recursively if asked.
 * Symlinks are listed with their targets and never followed, neither the path's own last
 * component nor while recursing. At most MAX_LIST_ENTRIES entries, sorted by path.
 */
export async function listLayer(layer: string, guestPath = GUEST_WORKSPACE, recursive = false): Promise<LayerList> {
  const where = await resolveInLayer(layer, guestPath, { followFinal: false });
  // Reported under the caller's (normalised) path, as the in-guest file list does.
  const shown = lexicalGuestPath(guestPath);
  const top = await describeEntry(where.hostPath, shown);
  if (!top) {
    throw new PyroError("INVALID_ARGUMENT", `${guestPath} is not a file, directory or symlink; nothing to list`);
  }
  const entries: TreeEntryInfo[] = [];
  let truncated = false;
  const walk = async (host: string, guest: string): Promise<void> => {
    for (const name of (await utf8Names(host, guest)).sort()) {
      // One past the cap proves truncation; the extra entry is dropped after sorting.
      if (entries.length > MAX_LIST_ENTRIES) return;
      const entry = await describeEntry(join(host, name), posix.join(guest, name)).catch(() => undefined);
      if (!entry) continue;
      entries.push(entry);
      if (recursive && entry.artifact_type === "directory") await walk(join(host, name), entry.path);
    }
  };
  if (top.artifact_type === "directory") await walk(where.hostPath, shown);
  else entries.push(top);
  entries.sort(byPath);
  if (entries.length > MAX_LIST_ENTRIES) {
    truncated = true;
    entries.length = MAX_LIST_ENTRIES;
  }
  return { path: shown, recursive, entries, truncated };
}

function textOf(bytes: Buffer, cut: boolean, userPath: string): string {
  const text = decodeText(bytes, cut);
  if (text !== undefined) return text;
  throw new PyroError(
    "INVALID_ARGUMENT",
    `${userPath} is not UTF-8 text; disk read returns text only: use disk export to get the workspace's files`,
  );
}

/** Reads up to maxBytes of a text file, following symlinks that stay inside /workspace. */
export async function readLayer(layer: string, guestPath: string, maxBytes: number): Promise<LayerRead> {
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
    throw new PyroError("INVALID_ARGUMENT", `max_bytes must be a positive whole number of bytes, not ${maxBytes}`);
  }
  const where = await resolveInLayer(layer, guestPath, { followFinal: true });
  const info = await lstat(where.hostPath);
  if (info.isDirectory()) {
    throw new PyroError("INVALID_ARGUMENT", `${guestPath} is a directory; list it with disk list instead`);
  }
  if (!info.isFile())
    throw new PyroError("INVALID_ARGUMENT", `${guestPath} is not a regular file; only files can be read`);
  // O_NOFOLLOW | O_NONBLOCK: whatever was swapped in since the walk, never a host symlink, never a blocking FIFO.
  const handle = await open(where.hostPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const opened = await handle.stat();
    if (!opened.isFile()) {
      throw new PyroError("INVALID_ARGUMENT", `${guestPath} is not a regular file; only files can be read`);
    }
    const want = Math.min(opened.size, maxBytes);
    const buf = Buffer.alloc(want);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await handle.read(buf, got, want - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    const truncated = opened.size > maxBytes;
    return {
      path: lexicalGuestPath(guestPath),
      content: textOf(buf.subarray(0, got), truncated, guestPath),
      size_bytes: opened.size,
      truncated,
    };
  } finally {
    await handle.close();
  }
}

interface TreeStats {
  /** Files, directories and symlinks below the layer root. */
  entries: number;
  /** Sum of every entry's st_size, as `du --apparent-size` counts it. */
  apparentBytes: number;
  /** The same, each entry rounded up to a 4 KiB block (what the data really occupies in ext4). */
  blockBytes: number;
}

async function treeStats(root: string): Promise<TreeStats> {
  const stats: TreeStats = { entries: 0, apparentBytes: 0, blockBytes: 0 };
  const roundBlock = (n: number) => Math.ceil(n / 4096) * 4096;
  const walk = async (dir: string): Promise<void> => {
    for (const name of await utf8Names(dir)) {
      const full = join(dir, name);
      const info = await lstat(full);
      stats.apparentBytes += info.size;
      if (info.isDirectory()) {
        stats.entries++;
        stats.blockBytes += Math.max(4096, roundBlock(info.size));
        await walk(full);
      } else if (info.isFile()) {
        stats.entries++;
        stats.blockBytes += roundBlock(info.size);
      } else if (info.isSymbolicLink()) {
        stats.entries++;
        // Targets under 60 bytes live in the inode itself.
        stats.blockBytes += info.size < 60 ? 0 : roundBlock(info.size);
      }
    }
  };
  const rootInfo = await lstat(root);
  stats.apparentBytes += rootInfo.size;
  await walk(root);
  return stats;
}

/** Image size in MiB: the tree + 20% + 16 MiB, at least 32 MiB (counting inode tables and whole blocks). */
function imageMib(stats: TreeStats, inodes: number): number {
  const data = Math.max(stats.apparentBytes, stats.blockBytes + inodes * 256);
  return Math.max(32, Math.ceil((data * 1.2 + 16 * MIB) / MIB));
}

async function mkfsExt4(): Promise<string> {
  // sbin is often missing from a non-root PATH.
  let found = await findExecutable("mkfs.ext4");
  for (const candidate of ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"]) {
    if (found) break;
    found = await access(candidate, constants.X_OK).then(
      () => candidate,
      () => undefined,
    );
  }
  if (!found) {
    throw new PyroError(
      "HOST_REQUIREMENT_MISSING",
      "mkfs.ext4 was not found; install e2fsprogs (e.g. apt-get install e2fsprogs) to export disk images",
    );
  }
  return found;
}

/**
 * Writes the layer's contents as a raw ext4 image (label "workspace") at outputPath, which must not
 * exist. Built in a temp file beside the output and moved into place only when complete.
 */
export async function exportLayerImage(layer: string, outputPath: string): Promise<LayerImage> {
  const output = resolve(outputPath);
  const exists = async () => (await lstat(output).catch(() => undefined)) !== undefined;
  const taken = () =>
    new PyroError("OUTPUT_EXISTS", `${outputPath} already exists; choose an output path that does not exist yet`);
  if (await exists()) throw taken();
  const layerInfo = await lstat(layer).catch(() => undefined);
  if (!layerInfo?.isDirectory()) {
    throw new PyroError("INTERNAL", `the workspace layer ${layer} is missing or not a directory`);
  }
  const mkfs = await mkfsExt4();
  const stats = await treeStats(layer);
  const inodes = stats.entries + 1024;
  await mkdir(dirname(output), { recursive: true })
    .then(() => access(dirname(output), constants.W_OK | constants.X_OK))
    .catch((err) => {
      throw unwritableTarget("output_path", outputPath, err);
    });
  const tmp = join(dirname(output), `.${basename(output)}.pyro-${randomBytes(4).toString("hex")}.tmp`);
  try {
    let mib = imageMib(stats, inodes);
    // The estimate is generous, but ext4 overhead is not exactly predictable: grow and retry if short.
    for (let attempt = 0; ; attempt++) {
      await rm(tmp, { force: true });
      await (await open(tmp, "wx", 0o644)).close();
      try {
        await run(mkfs, ["-q", "-F", "-d", layer, "-L", "workspace", "-N", String(inodes), tmp, `${mib}M`], {
          maxBuffer: 16 * MIB,
        });
        break;
      } catch (err) {
        const stderr = String((err as { stderr?: string }).stderr ?? "").trim();
        if (attempt < 2 && /space|allocat|too small/i.test(stderr)) {
          mib *= 2;
          continue;
        }
        throw new PyroError(
          "INTERNAL",
          `mkfs.ext4 could not build the image: ${stderr || (err as Error).message}; check there is free space beside ${outputPath}`,
        );
      }
    }
    // A hard link is a no-clobber rename: an output created meanwhile is never overwritten.
    try {
      await hardLink(tmp, output);
      await rm(tmp, { force: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EEXIST") throw taken();
      if (await exists()) throw taken();
      await rename(tmp, output);
    }
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const written = await lstat(output);
  return { output_path: output, size_bytes: written.size, entry_count: stats.entries };
}
