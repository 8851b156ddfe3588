// Owns the disk a workspace's writable layers live on: everything the guest can write to the host
// (gvisor's overlay upper, which holds /workspace and the root's changes; qemu's /workspace) sits
// in the sandbox directory's `disk/`. As root that directory is an ext4 file system of `disk_mib`
// in a sparse image file (`disk.img`), loop-mounted, so a guest that fills it gets ENOSPC and the
// host's disk never fills; deleting files inside gives the space back to the host (discard).
// Rootless, or where the host cannot mount an image, `disk/` is a plain directory and there is no
// limit (the workspace's record says so: disk_mib null).
//
// A reset builds the new contents on a new disk (`disk.next`) and swaps it in, so a crash leaves one
// whole disk or the other. With images the commit is one rename of `disk.next.img` over `disk.img`;
// with plain directories it is the directory swap. A mount is only ever made under the disk's lock,
// so two processes never stack two mounts on one directory.
import { execFile } from "node:child_process";
import { mkdir, rename, rm, stat, statfs, truncate } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { PyroError } from "../contract/errors.js";
import { listMounts, unmount } from "../engines/mounts.js";
import { DISK_DIR } from "../engines/types.js";
import { acquireLock } from "../environments/lock.js";
import { isRootless } from "../rootless/mode.js";

const run = promisify(execFile);

/** One inode per 4 KiB: a tree of a million small files fits in 4 GiB. */
const BYTES_PER_INODE = 4096;

/** What layouts before the disk kept directly in the sandbox dir, moved into `disk/` on first use. */
const LEGACY_ENTRIES = ["upper", "work", "workspace"];

export function diskPaths(sandbox: string) {
  return {
    dir: join(sandbox, DISK_DIR),
    image: join(sandbox, "disk.img"),
    next: join(sandbox, "disk.next"),
    nextImage: join(sandbox, "disk.next.img"),
    old: join(sandbox, "disk.old"),
    lock: join(sandbox, "disk.lock"),
  };
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** Why this host cannot hold a workspace to a disk size, or undefined when it can. */
export async function diskLimitUnavailable(): Promise<string | undefined> {
  if (isRootless()) return "rootless pyro cannot mount a disk image";
  if (process.getuid?.() !== 0) return "pyro is not root";
  if (!(await exists("/dev/loop-control"))) return "this host has no loop devices (/dev/loop-control)";
  try {
    await run("mkfs.ext4", ["-V"]);
  } catch {
    return "mkfs.ext4 is not installed (apt-get install e2fsprogs)";
  }
  return undefined;
}

/** Bytes of the file system holding `path` (its nearest existing ancestor). */
export async function filesystemBytes(path: string): Promise<number> {
  let at = path;
  for (;;) {
    try {
      const fs = await statfs(at);
      return fs.blocks * fs.bsize;
    } catch {
      const up = join(at, "..");
      if (up === at) return Number.POSITIVE_INFINITY;
      at = up;
    }
  }
}

async function makeImage(image: string, mib: number): Promise<void> {
  await rm(image, { force: true });
  await run("truncate", ["-s", `${mib}M`, image]).catch(() => truncate(image, mib * 1024 * 1024));
  try {
    // No reserved blocks, inode tables and journal left unwritten (sparse), no discard pass now.
    await run("mkfs.ext4", [
      "-q",
      "-F",
      "-m",
      "0",
      "-i",
      String(BYTES_PER_INODE),
      "-E",
      "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
      image,
    ]);
  } catch (err) {
    await rm(image, { force: true });
    throw new PyroError(
      "SANDBOX_START_FAILED",
      `could not make the workspace's ${mib} MiB disk: ${(err as { stderr?: string }).stderr?.trim() ?? err}`,
    );
  }
}

async function mountImage(image: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  try {
    await run("mount", ["-o", "loop,discard,nosuid,nodev", image, dir]);
  } catch (err) {
    throw new PyroError(
      "SANDBOX_START_FAILED",
      `could not mount the workspace's disk ${image}: ${(err as { stderr?: string }).stderr?.trim() ?? err}. ` +
        "pyro needs root and a free loop device (losetup -f)",
    );
  }
}

async function withDiskLock<T>(sandbox: string, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(diskPaths(sandbox).lock, { timeoutMs: 60_000, pollMs: 5 });
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/** A new workspace's empty disk: an image of `mib` mounted, or a plain directory when `mib` is null. */
export async function createDisk(sandbox: string, mib: number | null): Promise<void> {
  const paths = diskPaths(sandbox);
  await mkdir(paths.dir, { recursive: true, mode: 0o755 });
  if (mib === null) return;
  await withDiskLock(sandbox, async () => {
    await makeImage(paths.image, mib);
    await mountImage(paths.image, paths.dir);
  });
}

/**
 * Makes the disk usable before anything reads or boots on it: a reset a crash cut off is finished
 * or dropped, a layout from before the disk is moved into it, and an image not mounted (after a
 * host reboot, or a reset) is mounted. Cheap when there is nothing to do: two stats.
 */
export async function ensureDisk(sandbox: string, mib: number | null): Promise<void> {
  const paths = diskPaths(sandbox);
  if (mib !== null && (await mountedHere(paths.dir, sandbox))) return;
  if (mib === null && (await plainDiskSettled(sandbox))) return;
  await withDiskLock(sandbox, async () => {
    await recoverSwap(sandbox, mib);
    if (mib === null) {
      await mkdir(paths.dir, { recursive: true, mode: 0o755 });
      await adoptLegacy(sandbox);
      return;
    }
    if (!(await mountedHere(paths.dir, sandbox))) {
      if (!(await exists(paths.image))) {
        // A workspace from before disks (or one whose image was lost): its layers get a disk now.
        await makeImage(paths.image, mib);
        const legacy = await legacyEntries(sandbox, paths.dir);
        await mountImage(paths.image, paths.dir);
        await moveAcross(legacy, paths.dir);
      } else {
        await mountImage(paths.image, paths.dir);
      }
    }
  });
}

/** A plain directory disk with no reset to finish and no old layout to take in. */
async function plainDiskSettled(sandbox: string): Promise<boolean> {
  const paths = diskPaths(sandbox);
  const present = await Promise.all(
    [paths.dir, paths.next, paths.old, ...LEGACY_ENTRIES.map((n) => join(sandbox, n))].map(exists),
  );
  return present[0] === true && present.slice(1).every((p) => !p);
}

/** A mount point is on another device than its parent. */
async function mountedHere(dir: string, parent: string): Promise<boolean> {
  const [a, b] = await Promise.all([stat(dir).catch(() => undefined), stat(parent).catch(() => undefined)]);
  return !!a && !!b && a.dev !== b.dev;
}

async function legacyEntries(sandbox: string, into: string): Promise<Array<{ from: string; to: string }>> {
  const found: Array<{ from: string; to: string }> = [];
  for (const name of LEGACY_ENTRIES) {
    if (await exists(join(sandbox, name))) found.push({ from: join(sandbox, name), to: join(into, name) });
  }
  return found;
}

/** Plain directory disks: a rename on the same file system. */
async function adoptLegacy(sandbox: string): Promise<void> {
  for (const { from, to } of await legacyEntries(sandbox, diskPaths(sandbox).dir)) await rename(from, to);
}

/** Into a mounted image: a copy (another file system), then the old one is removed. */
async function moveAcross(entries: Array<{ from: string; to: string }>, dir: string): Promise<void> {
  for (const { from, to } of entries) {
    await run("cp", ["-a", "--no-target-directory", from, to]).catch((err) => {
      throw new PyroError(
        "INTERNAL",
        `moving ${from} onto the workspace's disk ${dir} failed: ${(err as { stderr?: string }).stderr ?? err}`,
      );
    });
    await rm(from, { recursive: true, force: true });
  }
}

/** Takes the disk (and a reset's half-built one) down: before the workspace's directory goes. */
export async function releaseDisk(sandbox: string): Promise<void> {
  const paths = diskPaths(sandbox);
  if (!(await exists(sandbox))) return; // a create that died before making it
  await withDiskLock(sandbox, async () => {
    await unmount(paths.next);
    await unmount(paths.dir);
  });
}

/**
 * Replaces the disk's contents whole: `fill` writes the new contents into an empty disk of the same
 * kind, which then takes the old one's place. The sandbox must be halted. `committed` runs right
 * after the point of no return (a crash before it keeps the old disk, after it the new one).
 */
export async function replaceDisk(
  sandbox: string,
  mib: number | null,
  fill: (dir: string) => Promise<void>,
  committed: () => void = () => {},
): Promise<void> {
  const paths = diskPaths(sandbox);
  await withDiskLock(sandbox, async () => {
    await recoverSwap(sandbox, mib);
    if (mib !== null) await makeImage(paths.nextImage, mib);
    try {
      if (mib !== null) await mountImage(paths.nextImage, paths.next);
      else await mkdir(paths.next, { mode: 0o755 });
      await fill(paths.next);
    } catch (err) {
      await unmount(paths.next);
      await rm(paths.next, { recursive: true, force: true });
      await rm(paths.nextImage, { force: true });
      throw err;
    }
    if (mib !== null) {
      await unmount(paths.next);
      await unmount(paths.dir);
      await rename(paths.nextImage, paths.image);
      committed();
      await rm(paths.next, { recursive: true, force: true });
      await mountImage(paths.image, paths.dir);
    } else {
      await rm(paths.old, { recursive: true, force: true });
      await rename(paths.dir, paths.old);
      committed();
      await rename(paths.next, paths.dir);
      await rm(paths.old, { recursive: true, force: true });
    }
  });
}

/** After a crash in replaceDisk: a new disk not yet committed is dropped, one committed is kept. */
async function recoverSwap(sandbox: string, mib: number | null): Promise<void> {
  const paths = diskPaths(sandbox);
  if (mib !== null) {
    await unmount(paths.next);
    await rm(paths.nextImage, { force: true });
    await rm(paths.next, { recursive: true, force: true });
    return;
  }
  // Plain directories: the old disk is moved aside only once the new one is whole.
  if (!(await exists(paths.dir)) && (await exists(paths.next))) await rename(paths.next, paths.dir);
  else if (!(await exists(paths.dir)) && (await exists(paths.old))) await rename(paths.old, paths.dir);
  await rm(paths.next, { recursive: true, force: true });
  await rm(paths.old, { recursive: true, force: true });
}

/** MiB in use on a mounted disk, or null when the disk has no limit (nothing to measure against). */
export async function diskUsedMib(sandbox: string, mib: number | null): Promise<number | null> {
  if (mib === null) return null;
  const dir = diskPaths(sandbox).dir;
  if (!(await mountedHere(dir, sandbox))) return null;
  const fs = await statfs(dir);
  return Math.round(((fs.blocks - fs.bfree) * fs.bsize) / (1024 * 1024));
}

/** Disks of this state dir left mounted by workspaces that no longer exist. */
export async function mountedDisksUnder(root: string): Promise<string[]> {
  return (await listMounts()).filter((m) => m.startsWith(`${root}/`) && /\/disk(\.next)?$/.test(m));
}
