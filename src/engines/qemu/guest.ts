// Owns what a QEMU guest boots: Debian's cloud kernel unpacked from its package (fetched through the
// host's apt, never from a hard-coded address), an initramfs (busybox-static, the virtio modules in
// load order, and pyro's init), and an ext4 image of each environment's root. Each is built once,
// under a lock, and cached beside the environments.

import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import writeFileAtomic from "write-file-atomic";
import { PyroError } from "../../contract/errors.js";
import { AGENT_ARGV, type InstalledEnvironment } from "../../environments/index.js";
import { acquireLock } from "../../environments/lock.js";

const run = promisify(execFile);

/** Modules the init loads, in dependency order: the ring and core before the PCI transport, then
 * the devices (DESIGN.md: the order matters). */
export const GUEST_MODULES = [
  "virtio_ring",
  "virtio",
  "virtio_pci_legacy_dev",
  "virtio_pci_modern_dev",
  "virtio_pci",
  "virtio_console",
  "virtio_blk",
  "failover",
  "net_failover",
  "virtio_net",
  "fuse",
  "virtiofs",
] as const;

/** The virtio-serial port the agent speaks on, and the line it prints once it waits there. */
export const AGENT_PORT = "pyro.agent";
export const AGENT_READY_LINE = "PYRO-AGENT-READY";
/** QEMU user networking's fixed addresses, as the guest is configured for them. */
export const GUEST_NET = { address: "10.0.2.15/24", gateway: "10.0.2.2", dns: "10.0.2.3" } as const;

/** The initramfs's /init: the root disk is mounted read-write and the agent runs chrooted into it
 * on a virtio-serial port; when the agent exits, what is left is killed, the disk synced and the VM
 * powered off. `pyro.probe` on the command line just reports that the kernel got this far. */
const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in ${GUEST_MODULES.join(" ")}; do insmod /lib/modules/$m.ko 2>/dev/null || echo "pyro-init: cannot load $m" > /dev/console; done
case " $(cat /proc/cmdline) " in *" pyro.probe "*) echo "PYRO-PROBE-OK $(uname -r)" > /dev/console; poweroff -f;; esac
ip link set lo up
hostname pyro
mkdir -p /newroot
mount -t ext4 /dev/vda /newroot || { echo "pyro-init: cannot mount the root disk" > /dev/console; poweroff -f; }
mount -t proc proc /newroot/proc; mount -t sysfs sys /newroot/sys; mount -t devtmpfs dev /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm /newroot/workspace /newroot/tmp
mount -t devpts -o newinstance,ptmxmode=0666 devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 shm /newroot/dev/shm
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up; ip addr add ${GUEST_NET.address} dev eth0; ip route add default via ${GUEST_NET.gateway}
  echo "nameserver ${GUEST_NET.dns}" > /newroot/etc/resolv.conf
fi
chroot /newroot ${AGENT_ARGV.join(" ")} --virtio-port ${AGENT_PORT} < /dev/null > /dev/console 2>&1
kill -KILL -1; sync
umount /newroot/workspace /newroot/dev/pts /newroot/dev/shm /newroot/dev /newroot/sys /newroot/proc 2>/dev/null
mount -o remount,ro /newroot; sync
poweroff -f
`;

/** Names the initramfs by what goes in it, so a changed init or module list is rebuilt. */
export const INITRAMFS_DIGEST = createHash("sha256")
  .update(INIT)
  .update(GUEST_MODULES.join(","))
  .digest("hex")
  .slice(0, 16);

export interface GuestKernel {
  kernel: string;
  initrd: string;
  /** `uname -r` of the guest. */
  release: string;
  package: string;
  initramfs_digest: string;
}

const BUSYBOX = "/bin/busybox";

/** The cloud kernel and pyro's initramfs, built on first use into `dir`. */
export async function ensureGuestKernel(dir: string): Promise<GuestKernel> {
  const manifestPath = join(dir, "kernel.json");
  const current = (t: string) => {
    const k = JSON.parse(t) as GuestKernel;
    return k.initramfs_digest === INITRAMFS_DIGEST ? k : undefined;
  };
  const cached = await readFile(manifestPath, "utf8").then(current, () => undefined);
  if (cached) return cached;
  await mkdir(dir, { recursive: true });
  const lock = await acquireLock(join(dir, "build.lock"), { timeoutMs: 10 * 60_000, pollMs: 100 });
  try {
    const again = await readFile(manifestPath, "utf8").then(current, () => undefined);
    if (again) return again;
    if (!(await stat(BUSYBOX).catch(() => undefined))) {
      throw new PyroError("HOST_REQUIREMENT_MISSING", "busybox-static is missing; apt-get install busybox-static");
    }
    const work = await mkdtemp(join(dir, ".build-"));
    try {
      // The meta package names the current versioned image package, which apt downloads.
      const { stdout: deps } = await run("apt-cache", ["depends", "linux-image-cloud-amd64"]);
      const pkg = /Depends: (linux-image-[\w.-]+-cloud-amd64)/.exec(deps)?.[1];
      if (!pkg)
        throw new PyroError("PACKAGE_ARCHIVE_UNREACHABLE", "apt knows no linux-image-cloud-amd64; run apt-get update");
      await run("apt-get", ["download", "-q", pkg], { cwd: work, timeout: 10 * 60_000 }).catch((err) => {
        throw new PyroError(
          "PACKAGE_ARCHIVE_UNREACHABLE",
          `apt-get download ${pkg} failed: ${(err as { stderr?: string }).stderr ?? err}; check the host's apt sources`,
        );
      });
      const deb = (await readdir(work)).find((f) => f.endsWith(".deb"))!;
      const unpacked = join(work, "pkg");
      await run("dpkg-deb", ["-x", join(work, deb), unpacked]);
      const release = (await readdir(join(unpacked, "lib", "modules")))[0]!;
      const kernel = join(dir, `vmlinuz-${release}`);
      await copyFile(join(unpacked, "boot", `vmlinuz-${release}`), kernel);
      const initrd = join(dir, `initrd-${release}-${INITRAMFS_DIGEST}.gz`);
      await buildInitramfs(join(unpacked, "lib", "modules", release), join(work, "initramfs"), initrd);
      const manifest: GuestKernel = { kernel, initrd, release, package: pkg, initramfs_digest: INITRAMFS_DIGEST };
      await writeFileAtomic(manifestPath, JSON.stringify(manifest, null, 2));
      return manifest;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  } finally {
    await lock.release();
  }
}

async function buildInitramfs(modulesDir: string, tree: string, output: string): Promise<void> {
  await mkdir(join(tree, "bin"), { recursive: true });
  await mkdir(join(tree, "lib", "modules"), { recursive: true });
  for (const d of ["dev", "proc", "sys"]) await mkdir(join(tree, d));
  await copyFile(BUSYBOX, join(tree, "bin", "busybox"));
  const { stdout } = await run("find", [modulesDir, "-name", "*.ko"], { maxBuffer: 64 * 1024 * 1024 });
  const byName = new Map(
    stdout
      .split("\n")
      .filter(Boolean)
      .map((p) => [p.slice(p.lastIndexOf("/") + 1, -3), p]),
  );
  for (const name of GUEST_MODULES) {
    const path = byName.get(name);
    if (!path) throw new PyroError("INTERNAL", `the guest kernel has no ${name} module`);
    await copyFile(path, join(tree, "lib", "modules", `${name}.ko`));
  }
  await writeFile(join(tree, "init"), INIT, { mode: 0o755 });
  await run("sh", [
    "-c",
    `cd "$1" && find . | ${BUSYBOX} cpio -o -H newc 2>/dev/null | gzip -1 > "$2.tmp"`,
    "sh",
    tree,
    output,
  ]);
  await rename(`${output}.tmp`, output);
}

/** Room the root disk has beyond the environment's files, for what sandboxes install (the image
 * file is sparse: unused room costs nothing on the host). */
const ROOT_HEADROOM_MIB = 2048;

/** Where the image of the environment's current root and agent is (or will be). */
export function rootImagePath(environment: InstalledEnvironment): string {
  const { rootDir, manifest } = environment;
  const key = createHash("sha256").update(`${manifest.rootfs_digest} ${manifest.agent_digest}`).digest("hex");
  return join(dirname(rootDir), `qemu-root-${key.slice(0, 12)}.img`);
}

/** An ext4 image of an environment's root, beside it, named by the root and agent it holds (a
 * re-pulled environment or a new agent gets a new image); shared read-only by every VM. Older images
 * stay: stopped workspaces' disks are overlays on the image they were created from. */
export async function ensureRootImage(environment: InstalledEnvironment): Promise<string> {
  const { rootDir } = environment;
  const envDir = dirname(rootDir);
  const image = rootImagePath(environment);
  if (await stat(image).catch(() => undefined)) return image;
  const lock = await acquireLock(join(envDir, "qemu-root.lock"), { timeoutMs: 10 * 60_000, pollMs: 100 });
  try {
    if (await stat(image).catch(() => undefined)) return image;
    const { stdout } = await run("du", ["-sm", rootDir]);
    const sizeMib = Math.ceil(Number(stdout.split("\t")[0]) * 1.2) + ROOT_HEADROOM_MIB;
    await run("mkfs.ext4", ["-q", "-F", "-d", rootDir, "-L", "pyro-root", `${image}.tmp`, `${sizeMib}M`], {
      timeout: 10 * 60_000,
    });
    await rename(`${image}.tmp`, image);
    return image;
  } finally {
    await lock.release();
  }
}
