// Owns `pyro env prune`'s part for the qemu engine: the saved VMs and root images no sandbox can
// use any more. Every agent rebuild gives an environment a new image and new saved VMs, but a
// sandbox's disk is a qcow2 overlay on the saved disk (and image) it was created from, so nothing
// in a live backing chain is ever removed: only what is neither current nor referenced.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, readlink, rm, stat, symlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { promisify } from "node:util";
import type { InstalledEnvironment } from "../../environments/index.js";
import { tryAcquireLock } from "../../environments/lock.js";
import { rootImagePath } from "./guest.js";

const run = promisify(execFile);

/**
 * Records that the disk `user` is an overlay on `backing` (a saved VM's disk or a root image): a
 * link in `<backing>.users/`. Sandboxes of every state dir on the host register here, so a prune
 * run against one state dir still sees the disks of another.
 */
export async function recordUser(backing: string, user: string): Promise<void> {
  const dir = `${backing}.users`;
  await mkdir(dir, { recursive: true });
  const link = join(dir, createHash("sha256").update(user).digest("hex").slice(0, 16));
  await rm(link, { force: true });
  await symlink(user, link);
}

/** The registered users of `backing` whose disks still exist; dead links are swept. */
async function liveUsers(backing: string): Promise<string[]> {
  const dir = `${backing}.users`;
  const live: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const target = await readlink(join(dir, name)).catch(() => undefined);
    if (target && existsSync(target)) live.push(target);
    else await rm(join(dir, name), { force: true });
  }
  return live;
}

export interface PruneInput {
  /** <cache>/qemu */
  qemuDir: string;
  environments: InstalledEnvironment[];
  /** Every sandbox disk on the host (workspaces and one-shot runs), running or not. */
  disks: string[];
  /** The initramfs new VMs boot now (kernel.json), if one was built. */
  initrd: string | undefined;
}

/** The files a qcow2 disk's backing chain opens, itself included; -U reads disks QEMU has locked. */
async function backingChain(disk: string): Promise<string[]> {
  const { stdout } = await run("qemu-img", ["info", "-U", "--backing-chain", "--output=json", disk]);
  return (JSON.parse(stdout) as Array<{ filename: string }>).map((layer) => layer.filename);
}

async function sizeOf(path: string): Promise<number> {
  const { stdout } = await run("du", ["-sk", path]).catch(() => ({ stdout: "0" }));
  return Number(stdout.split("\t")[0]) * 1024;
}

export async function pruneQemuCache(input: PruneInput): Promise<{ removed: string[]; freed_bytes: number }> {
  const removed: string[] = [];
  let freed = 0;
  // Anything a sandbox's disk reads from stays. A disk whose chain cannot be read stops the prune:
  // better to keep everything than to guess.
  const inUse = new Set<string>();
  for (const disk of input.disks) for (const file of await backingChain(disk)) inUse.add(file);
  const current = new Set(input.environments.map(rootImagePath));

  const templates = join(input.qemuDir, "templates");
  for (const name of await readdir(templates).catch(() => [] as string[])) {
    const dir = join(templates, name);
    if (!/^[0-9a-f]{16}$/.test(name) || !(await stat(dir)).isDirectory()) continue;
    const meta = await readFile(join(dir, "template.json"), "utf8").then(
      (t) => JSON.parse(t) as { root: string; initrd?: string },
      () => undefined,
    );
    if (!meta) continue; // a build in progress or a dead one; ensureTemplate clears those
    // A saved VM whose image is gone (an environment rebuilt beside it) restores nothing: its chain
    // is just itself, so it goes unless a disk uses it.
    const chain = await backingChain(meta.root).catch(() => [meta.root]);
    const keep = () => {
      for (const file of chain) inUse.add(file);
    };
    // New sandboxes restore it (current image and initramfs), or an existing disk is an overlay on it.
    const restorable = chain.some((f) => current.has(f)) && meta.initrd !== undefined && meta.initrd === input.initrd;
    if (restorable || inUse.has(meta.root) || (await liveUsers(meta.root)).length > 0) {
      keep();
      continue;
    }
    // Its lock held means it is being built or read right now: leave it for the next prune.
    const lock = await tryAcquireLock(`${dir}.lock`);
    if (!lock) {
      keep();
      continue;
    }
    try {
      freed += await sizeOf(dir);
      await rm(dir, { recursive: true, force: true });
      removed.push(`qemu saved VM ${name}`);
    } finally {
      await lock.release();
    }
  }

  // Only the current initramfs boots anything (a stopped sandbox cold-boots the current one too).
  for (const name of await readdir(input.qemuDir).catch(() => [] as string[])) {
    const initrd = join(input.qemuDir, name);
    if (!name.startsWith("initrd-") || !name.endsWith(".gz") || initrd === input.initrd) continue;
    freed += await sizeOf(initrd);
    await rm(initrd, { force: true });
    removed.push(`qemu initramfs ${name}`);
  }

  for (const env of input.environments) {
    const envDir = dirname(env.rootDir);
    for (const name of await readdir(envDir)) {
      const image = join(envDir, name);
      if (!/^qemu-root(-[0-9a-f]+)?\.img$/.test(name) || current.has(image) || inUse.has(image)) continue;
      if ((await liveUsers(image)).length > 0) continue;
      freed += await sizeOf(image);
      await rm(image, { force: true });
      await rm(`${image}.users`, { recursive: true, force: true });
      removed.push(`qemu root image ${basename(envDir)}/${name}`);
    }
  }
  return { removed, freed_bytes: freed };
}
