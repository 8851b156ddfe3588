// Owns copying a host directory into a new one on the host without a tar stream between them: a
// seed into a writable layer whose sandbox has not started. Packing and unpacking cost ~0.7 ms a
// file in node-tar's streams (100,000 small files: 69 s, where `cp -a` takes 7 s); here a file
// costs a copy and a time stamp on libuv's pool, a directory or a link a syscall.
//
// What lands is what an extraction of the same tree packed as tar would give: files, directories
// and symbolic links with their permission bits less setuid and setgid, files' modification times,
// hard links kept as links, everything owned by the user pyro runs as. `keep` decides what is
// copied; a directory it refuses is left out whole. The walk is depth first, so a directory exists
// before anything beneath it, and at most COPIES_IN_FLIGHT files are copied at once.
import { constants } from "node:fs";
import { chmod, copyFile, link, mkdir, symlink, utimes } from "node:fs/promises";
import { join } from "node:path";
import { PyroError } from "../contract/errors.js";
import { type Walked, walkTree } from "./tree-walk.js";

/** Enough to keep libuv's four threads busy while the walk goes on. */
const COPIES_IN_FLIGHT = 32;

export interface CopiedTree {
  /** Entries copied, counting `to` itself as an archive counts "./". */
  entry_count: number;
  bytes_written: number;
}

/** Reading the source failed: the caller's to fix (its rights, or a tree changing under the copy). */
export class CopySourceError extends Error {
  constructor(override readonly cause: NodeJS.ErrnoException) {
    super(cause.message);
  }
}

/** What a special file is, in words: what a copy that leaves it out says. */
export function specialKind(stat: {
  isFIFO(): boolean;
  isSocket(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
}): string {
  if (stat.isFIFO()) return "FIFO";
  if (stat.isSocket()) return "socket";
  if (stat.isCharacterDevice()) return "character device";
  if (stat.isBlockDevice()) return "block device";
  return "special file";
}

export interface CopyOptions {
  /** Whether an entry is copied; a directory left out is left out whole. */
  keep: (walked: Walked) => boolean;
  /** ANDed with each entry's permission bits: a seed keeps the sticky bit (0o1777, the default),
   * an export to the host none of the three (0o777). */
  modeMask?: number;
  /** The error when `to` runs out of space (ENOSPC, EDQUOT), naming the limit met. */
  full: (code: string) => PyroError;
}

const FULL = new Set(["ENOSPC", "EDQUOT"]);

export async function copyDirectory(from: string, to: string, options: CopyOptions): Promise<CopiedTree> {
  const { keep, modeMask = 0o1777 } = options;
  /** A failed write into the copy: a full disk is `options.full`'s error. */
  const written = (err: NodeJS.ErrnoException): never => {
    if (FULL.has(err.code ?? "")) throw options.full(err.code ?? "ENOSPC");
    throw new PyroError("INTERNAL", `copying ${from} to ${to} failed: ${err.message}`);
  };
  /** copyFile names the source in its errors whichever side failed: only a full disk is the copy's. */
  const copyFailed = (err: NodeJS.ErrnoException): never => {
    if (FULL.has(err.code ?? "")) written(err);
    throw new CopySourceError(err);
  };
  await mkdir(to, { recursive: true });
  const copied: CopiedTree = { entry_count: 1, bytes_written: 0 };
  const inFlight = new Set<Promise<void>>();
  /** First copy of each file with more than one link, by device and inode: later names link to it. */
  const linked = new Map<string, Promise<string>>();
  let refusedDir: string | undefined;
  let failure: unknown;
  const track = (work: Promise<void>) => {
    const settled = work.catch((err) => {
      failure ??= err;
    });
    inFlight.add(settled);
    void settled.finally(() => inFlight.delete(settled));
  };
  try {
    for await (const walked of walkTree(from)) {
      if (failure) break;
      const { entry, stat } = walked;
      if (refusedDir !== undefined && entry.path.startsWith(refusedDir)) continue;
      if (!keep(walked)) {
        if (entry.type === "directory") refusedDir = `${entry.path}/`;
        continue;
      }
      const target = join(to, entry.path);
      const mode = entry.mode & modeMask;
      copied.entry_count += 1;
      if (entry.type === "directory") {
        await mkdir(target, { mode }).catch(written);
        await chmod(target, mode).catch(written); // mkdir's mode passes through the umask
      } else if (entry.type === "symlink") {
        await symlink(entry.link_target ?? "", target).catch(written);
      } else if (entry.type === "file") {
        const key = `${stat.dev}:${stat.ino}`;
        const first = stat.nlink > 1n ? linked.get(key) : undefined;
        if (first) {
          track(first.then((path) => link(path, target).catch(written)));
          continue;
        }
        copied.bytes_written += entry.size;
        const copy = copyFile(join(from, entry.path), target, constants.COPYFILE_EXCL)
          .catch(copyFailed)
          .then(async () => {
            // copyFile gives the copy the source's whole mode, setuid and setgid bits included.
            if (mode !== (entry.mode & 0o7777)) await chmod(target, mode).catch(written);
            await utimes(target, Number(stat.atimeNs) / 1e9, Number(stat.mtimeNs) / 1e9).catch(written);
            return target;
          });
        if (stat.nlink > 1n) linked.set(key, copy);
        track(copy.then(() => {}));
        while (inFlight.size >= COPIES_IN_FLIGHT) await Promise.race(inFlight);
      }
    }
  } catch (err) {
    failure ??= err instanceof PyroError ? err : new CopySourceError(err as NodeJS.ErrnoException);
  }
  await Promise.all(inFlight);
  if (failure) throw failure;
  return copied;
}
