// Owns how pyro starts QEMU and its helpers: the machine's command line (one shape for a saved
// image's VM and every VM restored from it, since a restore needs the same devices), the files a
// VM keeps in its run dir, and the processes — qemu-system-x86_64 and virtiofsd — started so they
// die with the process that started them.
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { PyroError } from "../../contract/errors.js";
import { logStderrLines } from "../../util/children.js";
import { DISK_DIR } from "../types.js";
import { AGENT_PORT, type GuestKernel } from "./guest.js";

export const QEMU = "qemu-system-x86_64";
export const VIRTIOFSD = "/usr/lib/qemu/virtiofsd";
/** The virtio-fs tag /workspace is shared under. */
export const WORKSPACE_TAG = "workspace";

export type Accel = "kvm" | "tcg";

/** What a sandbox VM keeps in its run dir. */
export function vmFiles(runDir: string) {
  return {
    /** The root disk: a qcow2 overlay on the saved image's disk (or the environment image). */
    root: join(runDir, "root.qcow2"),
    agent: join(runDir, "agent.sock"),
    qmp: join(runDir, "qmp.sock"),
    /** The guest's serial console: kernel messages, the init's and the agent's stderr. */
    console: join(runDir, "console.log"),
    pid: join(runDir, "qemu.pid"),
    fs: join(runDir, "fs.sock"),
    workspace: join(runDir, DISK_DIR, "workspace"),
    /** Guest memory of a VM restored from a saved one: a file in memory (tmpfs), removed as soon as
     * QEMU has it mapped. Named by the run dir, so a dead supervisor's can be found. */
    ram: `/dev/shm/pyro-vm-${createHash("sha256").update(runDir).digest("hex").slice(0, 16)}.ram`,
  };
}

export interface MachineSpec {
  accel: Accel;
  memMib: number;
  vcpuCount: number;
  guest: GuestKernel;
  /** Whether the VM has a NIC (QEMU user networking); network policy `off` has none. */
  nic: boolean;
  files: ReturnType<typeof vmFiles>;
  /** Guest memory in files.ram (a VM to save, or one restored from a save) rather than a memfd. */
  ramInFile: boolean;
}

/** POSIX-shell quoting, for the `exec:` migration URIs QEMU runs through /bin/sh. */
export function sq(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

/** init_on_free zeroes freed pages, which a saved VM's image then skips: a smaller file to load. */
const KERNEL_ARGS = "console=ttyS0 quiet panic=-1 init_on_free=1 pyro.mode=agent";

/**
 * `-smp`. Under TCG a VM that may only ever have one vCPU is translated as single-threaded: QEMU
 * drops the guest's memory barriers and makes its locked instructions plain ones. But virtiofsd
 * reads and writes the virtqueues from another host thread, and virtio's "publish the index, then
 * read the other side's" handshake needs those barriers on both sides; without them the guest and
 * virtiofsd could each miss the other's update, and the guest waited for ever for a reply that was
 * already in the used ring (a loop of git status in a 2,000-file checkout hung, its threads stuck
 * in request_wait_answer, in each of 3 runs; with a second possible vCPU, 3 runs of 24 passed). A
 * second possible vCPU, never plugged, makes QEMU translate for parallel use.
 */
function smp(m: Pick<MachineSpec, "accel" | "vcpuCount">): string {
  return m.accel === "tcg" && m.vcpuCount === 1 ? "1,maxcpus=2" : String(m.vcpuCount);
}

/** The command line of a sandbox VM. Memory is shared because vhost-user devices (the virtio-fs
 * share) map guest memory from another process. A VM that is saved, and every VM restored from
 * it, keeps its memory in a named file: the save then skips memory (x-ignore-shared) and the
 * saved memory file is copied, holes and all, for each restore. Loading memory through QEMU's
 * migration stream instead costs a page fault on each of the guest's zero pages and keeps every
 * page of guest memory resident (about 1 s and the whole mem_mib per VM, measured here). */
export function machineArgs(m: MachineSpec): string[] {
  const f = m.files;
  return [
    // microvm (PCIe for the virtio-pci devices) with KVM; under TCG microvm stalls calibrating its
    // clock, so pc.
    ...["-M", m.accel === "kvm" ? "microvm,acpi=on,pcie=on" : "pc", "-accel", m.accel],
    ...["-m", String(m.memMib), "-smp", smp(m)],
    ...[
      "-object",
      m.ramInFile
        ? `memory-backend-file,id=mem,size=${m.memMib}M,mem-path=${f.ram},share=on`
        : `memory-backend-memfd,id=mem,size=${m.memMib}M,share=on`,
      ...["-numa", "node,memdev=mem"],
    ],
    ...["-display", "none", "-monitor", "none", "-nodefaults", "-no-reboot"],
    ...["-serial", `file:${f.console}`, "-pidfile", f.pid],
    ...["-kernel", m.guest.kernel, "-initrd", m.guest.initrd, "-append", KERNEL_ARGS],
    ...["-drive", `file=${f.root},format=qcow2,if=virtio,cache=writeback,discard=unmap`],
    ...["-device", "virtio-serial-pci"],
    ...["-chardev", `socket,id=agent,path=${f.agent},server=on,wait=off`],
    ...["-device", `virtserialport,chardev=agent,name=${AGENT_PORT}`],
    ...["-qmp", `unix:${f.qmp},server=on,wait=off`],
    ...(m.nic ? ["-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0"] : []),
  ];
}

/** Whether new sandboxes restore a saved VM: under TCG, where booting costs seconds. microvm has no
 * PCI hot-plug for the virtio-fs device a restored VM needs, and with KVM a cold boot is short. */
export function restoresSavedVm(accel: Accel): boolean {
  return accel === "tcg";
}

/** The virtio-fs device, as a command-line argument (cold boot) or a hot-plug (after a restore:
 * a vhost-user device cannot be in a VM that is saved). */
export function fsDevice(files: ReturnType<typeof vmFiles>) {
  return {
    args: [
      ...["-chardev", `socket,id=fs0,path=${files.fs}`],
      ...["-device", `vhost-user-fs-pci,id=fsdev0,chardev=fs0,tag=${WORKSPACE_TAG}`],
    ],
    qmp: [
      {
        execute: "chardev-add",
        arguments: {
          id: "fs0",
          backend: { type: "socket", data: { addr: { type: "unix", data: { path: files.fs } }, server: false } },
        },
      },
      {
        execute: "device_add",
        arguments: { driver: "vhost-user-fs-pci", id: "fsdev0", chardev: "fs0", tag: WORKSPACE_TAG },
      },
    ],
  };
}

/** Starts a process that is SIGKILLed if its parent dies, so a killed supervisor leaves no VM. */
export function spawnTied(argv: string[], prefix: string[] = []): ChildProcess {
  const full = [...prefix, "setpriv", "--pdeathsig", "KILL", "--", ...argv];
  return spawn(full[0]!, full.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
}

/**
 * virtiofsd writes a pid file to /run/virtiofsd, which a rootless pyro cannot write; so it runs in a
 * mount namespace of its own with a private, empty /run (it needs nothing of the host's there).
 */
const PRIVATE_RUN = [
  "unshare",
  "--mount",
  "--propagation",
  "private",
  "--",
  "sh",
  "-c",
  'mount -t tmpfs -o mode=0755 tmpfs /run && mkdir /run/virtiofsd && exec "$@"',
  "virtiofsd",
];

/** virtiofsd serving `dir`; resolves once its socket is there for QEMU to connect to. */
export async function startVirtiofsd(files: ReturnType<typeof vmFiles>, log: (line: string) => void) {
  const child = spawnTied([
    ...PRIVATE_RUN,
    VIRTIOFSD,
    `--socket-path=${files.fs}`,
    ...["-o", `source=${files.workspace}`, "-o", "cache=none", "-o", "sandbox=chroot", "-o", "log_level=warn"],
  ]);
  logStderrLines(child, "virtiofsd", log);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  for (let waited = 0; !existsSync(files.fs); waited += 5) {
    if (child.exitCode !== null || waited > 10_000) {
      child.kill("SIGKILL");
      throw new PyroError(
        "SANDBOX_START_FAILED",
        `virtiofsd did not start (exit ${child.exitCode}); see the supervisor log`,
      );
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  return { child, exited };
}

/** Host processes (QEMU, virtiofsd) whose command line names this run dir: what a dead owner left. */
export async function processesOf(runDir: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = await readFile(`/proc/${entry}/cmdline`, "utf8").then(
      (t) => t.split("\0"),
      () => [] as string[],
    );
    const name = basename(argv[0] ?? "");
    if ((name === QEMU || name === basename(VIRTIOFSD)) && argv.some((a) => a.includes(`${runDir}/`)))
      found.push(Number(entry));
  }
  return found;
}

/** Resolves true once `path` has `text` in it, false when `give` says to stop looking. */
export async function waitForText(path: string, text: string, give: () => boolean, pollMs = 20): Promise<boolean> {
  for (;;) {
    const content = await readFile(path, "utf8").catch(() => "");
    if (content.includes(text)) return true;
    if (give()) return false;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
