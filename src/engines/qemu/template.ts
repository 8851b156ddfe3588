// Owns the saved VM new sandboxes start from: one cold boot per (environment image, kernel,
// machine shape), run until the agent waits on its port, then saved with QEMU's migration to a
// file beside the root disk it had. A new sandbox's disk is an overlay on that disk, and its QEMU
// loads the memory file instead of booting: no kernel boot and no agent start-up to pay.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { promisify } from "node:util";
import { PyroError } from "../../contract/errors.js";
import { acquireLock } from "../../environments/lock.js";
import { logStderrLines } from "../../util/children.js";
import { AGENT_READY_LINE, type GuestKernel } from "./guest.js";
import { type Accel, machineArgs, QEMU, spawnTied, sq, vmFiles, waitForText } from "./machine.js";
import { recordUser } from "./prune.js";
import { qmp } from "./qmp.js";

const run = promisify(execFile);
/** A cold boot under TCG takes about 7 s to the agent here; a loaded machine may take far longer. */
const BOOT_TIMEOUT_MS = 180_000;

export interface TemplateShape {
  accel: Accel;
  memMib: number;
  vcpuCount: number;
  nic: boolean;
}

export interface Template {
  dir: string;
  /** The disk as it was when the memory was saved; read-only from then on. */
  root: string;
  /** Guest memory as it was saved (a sparse file). */
  ram: string;
  /** Device state (QEMU's migration stream, without memory). */
  memory: string;
  /** The initramfs it booted (restores need the same one; another means this one is stale). */
  initrd: string;
  boot_ms: number;
  save_ms: number;
}

/** Save and restore leave guest memory in its shared file instead of the migration stream. */
export const IGNORE_SHARED = {
  execute: "migrate-set-capabilities",
  arguments: { capabilities: [{ capability: "x-ignore-shared", state: true }] },
};

export async function createOverlay(path: string, backing: string, backingFormat: "raw" | "qcow2"): Promise<void> {
  await run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", backing, "-F", backingFormat, path]);
}

/** The saved VM for this image, kernel and shape, built on first use under a lock. */
export async function ensureTemplate(
  cacheDir: string,
  image: string,
  guest: GuestKernel,
  shape: TemplateShape,
  log: (line: string) => void,
): Promise<Template> {
  // Named by everything the saved VM depends on: the image, the kernel and initramfs, and the
  // machine's whole command line (a restore needs the same devices).
  const key = createHash("sha256")
    .update(JSON.stringify({ image, args: machineArgs({ ...shape, guest, files: vmFiles("/"), ramInFile: true }) }))
    .digest("hex")
    .slice(0, 16);
  const dir = join(cacheDir, "templates", key);
  const meta = join(dir, "template.json");
  const read = () =>
    readFile(meta, "utf8").then(
      (t) => JSON.parse(t) as Template,
      () => undefined,
    );
  const cached = await read();
  if (cached) return cached;
  await mkdir(join(cacheDir, "templates"), { recursive: true });
  const lock = await acquireLock(`${dir}.lock`, { timeoutMs: 10 * 60_000, pollMs: 100 });
  try {
    const again = await read();
    if (again) return again;
    // Holding the lock means no build of this key runs: a build dir left here is a killed one's.
    const parent = dirname(dir);
    for (const f of await readdir(parent)) {
      if (!f.startsWith(`${basename(dir)}.build-`)) continue;
      await rm(vmFiles(join(parent, f)).ram, { force: true });
      await rm(join(parent, f), { recursive: true, force: true });
    }
    const work = await mkdtemp(`${dir}.build-`);
    try {
      const built = await buildTemplate(work, image, guest, shape, log);
      await rm(dir, { recursive: true, force: true });
      await rename(work, dir);
      await recordUser(image, join(dir, "root.qcow2"));
      const template: Template = {
        dir,
        root: join(dir, "root.qcow2"),
        ram: join(dir, "ram"),
        memory: join(dir, "memory"),
        initrd: guest.initrd,
        ...built,
      };
      await writeFile(meta, JSON.stringify(template, null, 2));
      return template;
    } catch (err) {
      await rm(work, { recursive: true, force: true });
      throw err;
    }
  } finally {
    await lock.release();
  }
}

async function buildTemplate(
  work: string,
  image: string,
  guest: GuestKernel,
  shape: TemplateShape,
  log: (line: string) => void,
): Promise<{ boot_ms: number; save_ms: number }> {
  const files = vmFiles(work);
  await createOverlay(files.root, image, "raw");
  const started = Date.now();
  const child = spawnTied([QEMU, ...machineArgs({ ...shape, guest, files, ramInFile: true })]);
  logStderrLines(child, "qemu", log);
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  try {
    const ready = await waitForText(
      files.console,
      AGENT_READY_LINE,
      () => child.exitCode !== null || child.signalCode !== null || Date.now() - started > BOOT_TIMEOUT_MS,
    );
    if (!ready) {
      const console = await readFile(files.console, "utf8").catch(() => "");
      throw new PyroError(
        "SANDBOX_START_FAILED",
        `the VM to save for new sandboxes did not reach its agent (${child.exitCode === null ? `no ready line in ${BOOT_TIMEOUT_MS} ms` : `QEMU exited ${child.exitCode}`}); its console ends: ${console.slice(-1500)}`,
      );
    }
    const bootMs = Date.now() - started;
    const saveStarted = Date.now();
    const memory = join(work, "memory");
    // Paused first, so the disk and memory are saved at one instant; QEMU flushes the disk as the
    // migration completes. Memory stays in its file (x-ignore-shared), copied below.
    await qmp(files.qmp, [
      { execute: "stop" },
      IGNORE_SHARED,
      { execute: "migrate", arguments: { uri: `exec:cat > ${sq(memory)}` } },
    ]);
    for (;;) {
      const [status] = (await qmp(files.qmp, [{ execute: "query-migrate" }])) as Array<{
        status?: string;
        "error-desc"?: string;
      }>;
      if (status?.status === "completed") break;
      if (status?.status === "failed" || status?.status === "cancelled") {
        throw new PyroError(
          "SANDBOX_START_FAILED",
          `QEMU could not save the VM: ${status["error-desc"] ?? status.status}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await qmp(files.qmp, [{ execute: "quit" }]).catch(() => {});
    await exited;
    await run("cp", ["--sparse=always", files.ram, join(work, "ram")]);
    // Every restored sandbox's disk and memory start from these: nothing may write them again.
    await chmod(files.root, 0o444);
    await chmod(join(work, "ram"), 0o444);
    const saveMs = Date.now() - saveStarted;
    if (!(await stat(memory)).size) throw new PyroError("SANDBOX_START_FAILED", "QEMU saved an empty VM image");
    log(`qemu: saved the VM for new sandboxes (boot ${bootMs} ms, save ${saveMs} ms)`);
    return { boot_ms: bootMs, save_ms: saveMs };
  } finally {
    child.kill("SIGKILL");
    for (const f of [files.agent, files.qmp, files.pid, files.ram]) await rm(f, { force: true });
  }
}
