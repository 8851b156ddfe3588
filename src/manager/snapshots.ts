// Owns a workspace's named snapshots on the host: the store directory (one `<name>/tree` plus
// `<name>/snapshot.json` per snapshot), building a snapshot from a stopped or frozen layer, listing,
// deleting, and restoring one into a directory.
//
// Snapshots are cheap because unchanged file data is shared by HARD LINKS between immutable trees:
// other snapshots in this store and trees the caller names (the baseline). A file is shared when the
// same relative path is a regular file there with the same size, mode and mtime. Nothing is ever
// linked to the live layer (the guest writes files in place, which would change the snapshot), and
// a restore is always a real copy for the same reason. ext4 has no reflinks, so links it is.
//
// Crash safety: a snapshot is built under `.<name>.tmp-<pid>` and renamed into place at the end; a
// delete renames to `.<name>.del-<pid>` before removing. Leftovers of dead processes are swept by
// create and list.

import { execFile } from "node:child_process";
import { constants } from "node:fs";
import {
  chmod,
  copyFile,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  readdir,
  readFile,
  readlink,
  realpath,
  rename,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { basename, dirname, join, relative, sep } from "node:path";
import { promisify } from "node:util";
import pLimit from "p-limit";
import pMap from "p-map";
import { z } from "zod";
import { PyroError } from "../contract/errors.js";
import { inBatches, walkTree } from "../util/tree-walk.js";

const run = promisify(execFile);

export const SNAPSHOT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const RESERVED_SNAPSHOT_NAMES: readonly string[] = ["baseline"];
/** How many file copies, links and stats run at once: enough to hide latency, few enough for fds. */
const IO_CONCURRENCY = 16;
/** Entries of the source read ahead of what is placed. */
const BUILD_BATCH = 256;
/** Directory listings of a candidate tree kept at once. */
const MAX_LISTINGS = 256;
const TREE = "tree";
const INFO_FILE = "snapshot.json";
/** `.<name>.tmp-<pid>` (a create in progress) or `.<name>.del-<pid>` (a delete in progress). */
const LEFTOVER = /^\.(.+)\.(tmp|del)-(\d+)$/;

export const SnapshotInfo = z.object({
  snapshot_name: z.string(),
  created_at: z.string().describe("ISO 8601 time the snapshot was taken."),
  size_bytes: z.number().int().nonnegative().describe("Sum of the sizes of the snapshot's regular files."),
  file_count: z.number().int().nonnegative().describe("How many regular files the snapshot holds."),
  shared_bytes: z
    .number()
    .int()
    .nonnegative()
    .describe("Of size_bytes, how much was hard-linked from another snapshot or the baseline instead of copied."),
  shared_files: z.number().int().nonnegative().describe("Of file_count, how many were hard-linked."),
});
export type SnapshotInfo = z.infer<typeof SnapshotInfo>;

/** What create returns: the stored info plus the entries it could not keep. */
export interface CreatedSnapshot extends SnapshotInfo {
  /** Relative paths of sockets, fifos and devices in the source; snapshots hold none of those. */
  skipped: string[];
}

export interface SnapshotList {
  count: number;
  snapshots: SnapshotInfo[];
}

/** Temp dirs this process is building or deleting right now; the sweep leaves them alone. */
const busy = new Set<string>();

export class SnapshotStore {
  constructor(readonly dir: string) {}

  /** Where a snapshot's files live. Checks the name's form, not that the snapshot exists. */
  treePath(name: string): string {
    checkName(name);
    return join(this.dir, name, TREE);
  }

  async create(name: string, source: string, opts: { shareWith?: string[] } = {}): Promise<CreatedSnapshot> {
    checkName(name);
    if (RESERVED_SNAPSHOT_NAMES.includes(name)) {
      throw new PyroError(
        "INVALID_ARGUMENT",
        `snapshot name "${name}" is reserved for the state at create; choose another name`,
      );
    }
    const root = await sourceDir(source);
    await mkdir(this.dir, { recursive: true });
    const existing = await this.list();
    if (existing.snapshots.some((s) => s.snapshot_name === name) || (await exists(join(this.dir, name)))) {
      throw alreadyExists(name);
    }

    // Candidates for sharing: the caller's trees in its order, then this store's snapshots newest
    // first. Anything overlapping the source is live data and is refused outright.
    const candidatePaths = [
      ...(opts.shareWith ?? []),
      ...existing.snapshots
        .slice()
        .reverse()
        .map((s) => join(this.dir, s.snapshot_name, TREE)),
    ];
    const candidates: CandidateTree[] = [];
    const seen = new Set<string>();
    for (const path of candidatePaths) {
      const real = await realpath(path).catch(() => null);
      if (real === null || seen.has(real)) continue;
      if (!(await isDirectory(real))) continue;
      if (overlaps(real, root)) {
        throw new PyroError(
          "INVALID_ARGUMENT",
          `cannot share files with ${path}: it overlaps the snapshot source ${source}, which is live; pass only snapshot or baseline trees in shareWith`,
        );
      }
      seen.add(real);
      candidates.push(new CandidateTree(real));
    }

    const tmp = join(this.dir, `.${name}.tmp-${process.pid}`);
    busy.add(tmp);
    try {
      await forceRemove(tmp);
      await mkdir(tmp);
      const built = await new TreeBuilder(root, join(tmp, TREE), candidates).build();
      const info: SnapshotInfo = {
        snapshot_name: name,
        created_at: new Date().toISOString(),
        size_bytes: built.sizeBytes,
        file_count: built.fileCount,
        shared_bytes: built.sharedBytes,
        shared_files: built.sharedFiles,
      };
      await writeFile(join(tmp, INFO_FILE), `${JSON.stringify(info, null, 2)}\n`);
      try {
        await rename(tmp, join(this.dir, name));
      } catch (err) {
        if (isCode(err, "ENOTEMPTY", "EEXIST")) throw alreadyExists(name);
        throw err;
      }
      return { ...info, skipped: built.skipped };
    } catch (err) {
      await forceRemove(tmp).catch(() => {});
      if (err instanceof PyroError) throw err;
      if (isCode(err, "ENOSPC", "EDQUOT")) {
        throw new PyroError(
          "INTERNAL",
          `no disk space left for snapshot ${name} in ${this.dir}; free space or delete old snapshots, then try again`,
        );
      }
      throw new PyroError(
        "INTERNAL",
        `creating snapshot ${name} from ${source} failed: ${messageOf(err)}; check that pyro can read every file there and write ${this.dir}, then try again`,
      );
    } finally {
      busy.delete(tmp);
    }
  }

  /** Every complete snapshot, oldest first. Half-built or half-deleted leftovers are removed. */
  async list(): Promise<SnapshotList> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if (isCode(err, "ENOENT")) return { count: 0, snapshots: [] };
      throw err;
    }
    await this.sweep(names);
    const infos = await Promise.all(names.filter((n) => SNAPSHOT_NAME_PATTERN.test(n)).map((n) => this.readInfo(n)));
    const snapshots = infos
      .filter((i): i is SnapshotInfo => i !== null)
      .sort((a, b) => a.created_at.localeCompare(b.created_at) || a.snapshot_name.localeCompare(b.snapshot_name));
    return { count: snapshots.length, snapshots };
  }

  async get(name: string): Promise<SnapshotInfo> {
    checkName(name);
    const info = await this.readInfo(name);
    if (info) return info;
    const { snapshots } = await this.list();
    const known = snapshots.map((s) => s.snapshot_name);
    throw new PyroError(
      "INVALID_ARGUMENT",
      `no snapshot named ${name}; ${known.length ? `known snapshots: ${known.join(", ")}` : "there are no snapshots yet"} (or use "baseline" for the state at create)`,
    );
  }

  /** Removes a snapshot. Files it shares with other snapshots live on through their other links. */
  async delete(name: string): Promise<void> {
    await this.get(name);
    const doomed = join(this.dir, `.${name}.del-${process.pid}`);
    busy.add(doomed);
    try {
      await forceRemove(doomed);
      await rename(join(this.dir, name), doomed);
      await forceRemove(doomed);
    } catch (err) {
      throw new PyroError("INTERNAL", `deleting snapshot ${name} failed: ${messageOf(err)}; try again`);
    } finally {
      busy.delete(doomed);
    }
  }

  /** Makes `target` hold exactly a real copy of the snapshot (never links: the guest writes files in
   * place). An existing target directory keeps its own inode, so a bind mount of it stays valid; its
   * contents are removed first. */
  async restore(name: string, target: string): Promise<void> {
    await this.get(name);
    const tree = this.treePath(name);
    const store = await realpath(this.dir);
    const parent = await realpath(dirname(target)).catch(() => dirname(target));
    if (overlaps(join(parent, basename(target)), store)) {
      throw new PyroError(
        "INVALID_ARGUMENT",
        `cannot restore snapshot ${name} into ${target}: it overlaps the snapshot store ${this.dir}; restore into the workspace's layer`,
      );
    }
    const st = await lstat(target).catch((err) => {
      if (isCode(err, "ENOENT")) return null;
      throw err;
    });
    try {
      if (st && !st.isDirectory()) await rm(target, { force: true });
      if (st?.isDirectory()) await emptyDir(target);
      else await mkdir(dirname(target), { recursive: true });
      await run("cp", ["-a", "--no-target-directory", tree, target], { maxBuffer: 16 * 1024 * 1024 });
    } catch (err) {
      const detail = (err as { stderr?: string }).stderr?.trim() || messageOf(err);
      throw new PyroError(
        "INTERNAL",
        `restoring snapshot ${name} into ${target} failed: ${detail}; the target may be incomplete, so restore again once the cause is fixed`,
      );
    }
  }

  private async readInfo(name: string): Promise<SnapshotInfo | null> {
    try {
      const parsed = SnapshotInfo.safeParse(JSON.parse(await readFile(join(this.dir, name, INFO_FILE), "utf8")));
      return parsed.success && parsed.data.snapshot_name === name ? parsed.data : null;
    } catch {
      return null;
    }
  }

  /** Removes `.<name>.tmp-<pid>` / `.<name>.del-<pid>` dirs whose process is gone (or is this one
   * but no longer working on them). */
  private async sweep(names?: string[]): Promise<void> {
    const entries = names ?? (await readdir(this.dir).catch(() => [] as string[]));
    await Promise.all(
      entries.map(async (entry) => {
        const m = LEFTOVER.exec(entry);
        if (!m) return;
        const path = join(this.dir, entry);
        const pid = Number(m[3]);
        if (busy.has(path) || (pid !== process.pid && processAlive(pid))) return;
        await forceRemove(path).catch(() => {});
      }),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Building a tree

interface BuildResult {
  sizeBytes: number;
  fileCount: number;
  sharedBytes: number;
  sharedFiles: number;
  skipped: string[];
}

type BigStats = Awaited<ReturnType<typeof lstatBig>>;

function lstatBig(path: string) {
  return lstat(path, { bigint: true });
}

class TreeBuilder {
  private readonly pool = pLimit(IO_CONCURRENCY);
  private readonly dirs: { rel: string; st: BigStats }[] = [];
  private readonly result: BuildResult = { sizeBytes: 0, fileCount: 0, sharedBytes: 0, sharedFiles: 0, skipped: [] };
  private readonly asRoot = process.getuid?.() === 0;
  private readonly uid = BigInt(process.getuid?.() ?? -1);
  private readonly gid = BigInt(process.getgid?.() ?? -1);

  constructor(
    private readonly src: string,
    private readonly dst: string,
    private readonly candidates: CandidateTree[],
  ) {}

  /** The source is walked depth first a few hundred entries at a time (a million files never sit
   * in memory at once); each batch's directories are made first, then its files and links placed
   * IO_CONCURRENCY at a time. */
  async build(): Promise<BuildResult> {
    const st = await lstatBig(this.src);
    await mkdir(this.dst, { mode: 0o700 });
    this.dirs.push({ rel: "", st });
    for await (const batch of inBatches(walkTree(this.src), BUILD_BATCH)) {
      for (const { entry, stat } of batch) {
        if (entry.type !== "directory") continue;
        await mkdir(join(this.dst, entry.path), { mode: 0o700 });
        this.dirs.push({ rel: entry.path, st: stat });
      }
      await pMap(
        batch.filter((w) => w.entry.type !== "directory"),
        async ({ entry, stat }) => {
          if (entry.type === "file") await this.placeFile(entry.path, stat);
          else if (entry.type === "symlink") await this.placeLink(entry.path, stat);
          else this.result.skipped.push(entry.path);
        },
        { concurrency: IO_CONCURRENCY },
      );
    }
    // Directory modes and times go on last, deepest first: adding entries changes a directory's
    // mtime, and a read-only directory would refuse them.
    this.dirs.sort((a, b) => depth(b.rel) - depth(a.rel));
    await settle(this.dirs.map((d) => this.pool(() => this.finishDir(d.rel, d.st))));
    this.result.skipped.sort();
    return this.result;
  }

  private async placeFile(rel: string, st: BigStats): Promise<void> {
    const to = join(this.dst, rel);
    this.result.fileCount++;
    this.result.sizeBytes += Number(st.size);
    for (const candidate of this.candidates) {
      const other = await candidate.lookupFile(rel);
      if (!other || !sameFile(other, st, this.asRoot)) continue;
      try {
        await link(candidate.path(rel), to);
        this.result.sharedFiles++;
        this.result.sharedBytes += Number(st.size);
        return;
      } catch {
        // Too many links (EMLINK), the candidate vanished, or another device: try the next one.
      }
    }
    // copyFile already gives the copy the source's permission bits; a chown clears setuid/setgid,
    // so those get set again after it.
    await copyFile(join(this.src, rel), to, constants.COPYFILE_EXCL);
    if (await this.chown(to, st)) await chmod(to, Number(st.mode & 0o7777n));
    await utimes(to, timeArg(st.atimeNs), timeArg(st.mtimeNs));
  }

  private async placeLink(rel: string, st: BigStats): Promise<void> {
    const to = join(this.dst, rel);
    await symlink(await readlink(join(this.src, rel)), to);
    await this.chown(to, st);
    await lutimes(to, timeArg(st.atimeNs), timeArg(st.mtimeNs)).catch(() => {});
  }

  private async finishDir(rel: string, st: BigStats): Promise<void> {
    const to = rel ? join(this.dst, rel) : this.dst;
    await this.chown(to, st);
    await chmod(to, Number(st.mode & 0o7777n));
    await utimes(to, timeArg(st.atimeNs), timeArg(st.mtimeNs));
  }

  /** Ownership is kept when running as root (otherwise it cannot be); true when it changed. */
  private async chown(to: string, st: BigStats): Promise<boolean> {
    if (!this.asRoot || (st.uid === this.uid && st.gid === this.gid)) return false;
    await lchown(to, Number(st.uid), Number(st.gid));
    return true;
  }
}

/**
 * Node's utimes takes seconds as a double and libuv keeps only microseconds, so nanoseconds cannot
 * be set. The argument is built so the stored time is exactly the source time truncated to the
 * microsecond (the half-microsecond nudge absorbs the double's rounding).
 */
function timeArg(ns: bigint): number {
  const us = floorDiv(ns, 1000n);
  const sec = floorDiv(us, 1_000_000n);
  return Number(sec) + (Number(us - sec * 1_000_000n) + 0.5) / 1e6;
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** A candidate's mtime equals the source's exactly (baseline made by cp -a) or as our own copies
 * store it (truncated to the microsecond). */
export function sameMtime(candidateNs: bigint, sourceNs: bigint): boolean {
  return candidateNs === sourceNs || candidateNs === floorDiv(sourceNs, 1000n) * 1000n;
}

function sameFile(candidate: BigStats, source: BigStats, compareOwner: boolean): boolean {
  return (
    candidate.isFile() &&
    candidate.size === source.size &&
    candidate.mode === source.mode &&
    sameMtime(candidate.mtimeNs, source.mtimeNs) &&
    (!compareOwner || (candidate.uid === source.uid && candidate.gid === source.gid))
  );
}

/**
 * An immutable tree files may be linked from. Lookups never follow symlinks: a path is resolved one
 * directory listing at a time and only through real directories, so a symlink planted in a snapshot
 * (which the guest controls) cannot lead to a host file outside the tree.
 */
class CandidateTree {
  private readonly listings = new Map<string, Promise<Map<string, boolean> | null>>();

  constructor(readonly root: string) {}

  path(rel: string): string {
    return join(this.root, rel);
  }

  async lookupFile(rel: string): Promise<BigStats | null> {
    const slash = rel.lastIndexOf("/");
    const listing = await this.listing(slash < 0 ? "" : rel.slice(0, slash));
    const isDir = listing?.get(rel.slice(slash + 1));
    if (isDir !== false) return null;
    const st = await lstatBig(this.path(rel)).catch(() => null);
    return st?.isFile() ? st : null;
  }

  /** Names in a directory of the tree (true for subdirectories), or null when it is not one. */
  private listing(dirRel: string): Promise<Map<string, boolean> | null> {
    let cached = this.listings.get(dirRel);
    // Least recently used first: a build walks depth first, so a few hundred listings are plenty.
    if (cached) this.listings.delete(dirRel);
    else cached = this.load(dirRel);
    this.listings.set(dirRel, cached);
    if (this.listings.size > MAX_LISTINGS) this.listings.delete(this.listings.keys().next().value!);
    return cached;
  }

  private async load(dirRel: string): Promise<Map<string, boolean> | null> {
    if (dirRel !== "") {
      const slash = dirRel.lastIndexOf("/");
      const parent = await this.listing(slash < 0 ? "" : dirRel.slice(0, slash));
      if (parent?.get(dirRel.slice(slash + 1)) !== true) return null;
    }
    try {
      const entries = await readdir(this.path(dirRel), { withFileTypes: true });
      return new Map(entries.map((e) => [e.name, e.isDirectory()]));
    } catch {
      return null;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

function checkName(name: string): void {
  if (typeof name !== "string" || !SNAPSHOT_NAME_PATTERN.test(name)) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `snapshot name ${JSON.stringify(name)} is not valid; use 1 to 64 letters, digits, '.', '_' and '-', starting with a letter or digit`,
    );
  }
}

function alreadyExists(name: string): PyroError {
  return new PyroError("INVALID_ARGUMENT", `snapshot ${name} already exists; delete it first or choose another name`);
}

async function sourceDir(source: string): Promise<string> {
  try {
    const real = await realpath(source);
    if ((await stat(real)).isDirectory()) return real;
  } catch {
    // reported below
  }
  throw new PyroError("INVALID_ARGUMENT", `snapshot source ${source} is not a directory; pass the workspace's layer`);
}

/** True when one path is the other or inside it. */
function overlaps(a: string, b: string): boolean {
  const inside = (x: string, y: string) => {
    const rel = relative(y, x);
    return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !rel.startsWith(sep));
  };
  return inside(a, b) || inside(b, a);
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

async function emptyDir(dir: string): Promise<void> {
  const pool = pLimit(IO_CONCURRENCY);
  const names = await readdir(dir);
  await settle(names.map((n) => pool(() => forceRemove(join(dir, n)))));
}

/** rm -rf that also gets through read-only directories (e.g. Go's module cache) when not root. */
async function forceRemove(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch (err) {
    if (!isCode(err, "EACCES", "EPERM")) throw err;
    await makeWritable(path);
    await rm(path, { recursive: true, force: true });
  }
}

async function makeWritable(path: string): Promise<void> {
  const st = await lstat(path).catch(() => null);
  if (!st?.isDirectory()) return;
  await chmod(path, (st.mode & 0o7777) | 0o700).catch(() => {});
  const names = await readdir(path).catch(() => [] as string[]);
  for (const name of names) await makeWritable(join(path, name));
}

function depth(rel: string): number {
  if (rel === "") return 0;
  let n = 1;
  for (const c of rel) if (c === "/") n++;
  return n;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isCode(err, "EPERM");
  }
}

function isCode(err: unknown, ...codes: string[]): boolean {
  return typeof err === "object" && err !== null && codes.includes((err as { code?: string }).code ?? "");
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Like Promise.all, but waits for every task before rethrowing the first failure, so nothing is
 * still writing into a directory the caller is about to remove. */
async function settle(tasks: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(tasks);
  const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failure) throw failure.reason;
}
