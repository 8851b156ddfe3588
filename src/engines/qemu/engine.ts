// Owns the qemu engine: a real guest kernel (Debian's cloud kernel) behind a hardware-style
// boundary. This release runs one-shot commands: the VM boots the initramfs, which mounts the
// environment's image read-only under a memory-backed overlay, runs the command, and reports stdout,
// stderr and the exit code on virtio-serial ports before powering off. KVM is used only when a
// bounded probe boot shows it can run a stock kernel (it cannot on PVM hosts); otherwise TCG.
// Persistent workspaces on qemu are not in this release.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { OutputCap, TIMEOUT_EXIT_CODE } from "../../channel/output.js";
import type { AgentExecResult } from "../../channel/protocol.js";
import { PyroError } from "../../contract/errors.js";
import type { Engine, EngineProbe, OneShotExec, Sandbox, SandboxSpec } from "../types.js";
import { ensureGuestKernel, ensureRootImage, type GuestKernel } from "./guest.js";

const run = promisify(execFile);
const QEMU = "qemu-system-x86_64";
/** How long a KVM probe boot may take before KVM is judged unable to run a stock kernel. */
const KVM_PROBE_MS = 8_000;

export type Accel = "kvm" | "tcg";

function qemuDir(rootDir: string): string {
  // <cache>/environments/<slug>/rootfs -> <cache>/qemu
  return join(dirname(dirname(dirname(rootDir))), "qemu");
}

/** POSIX-shell quoting for the script the guest runs. */
function sq(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

export function guestScript(exec: Pick<OneShotExec, "argv" | "cwd" | "env">): string {
  const env = Object.entries(exec.env).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
      throw new PyroError("INVALID_ARGUMENT", `bad environment variable name ${k}`);
    return `export ${k}=${sq(v)}`;
  });
  return [
    ...env,
    `cd ${sq(exec.cwd)} || exit 126`,
    // command not found is 127 and not executable 126, as a shell reports them.
    `exec ${exec.argv.map(sq).join(" ")}`,
    "",
  ].join("\n");
}

export class QemuEngine implements Engine {
  readonly name = "qemu" as const;
  private accel: Promise<Accel> | undefined;

  async probe(): Promise<EngineProbe> {
    try {
      const { stdout } = await run(QEMU, ["--version"], { timeout: 5_000 });
      const version = stdout.split("\n")[0]?.replace("QEMU emulator version", "QEMU").trim() ?? QEMU;
      // Not picked by `auto` in this release: gvisor serves every operation, this engine one-shot runs.
      return { available: true, auto: false, detail: `${version}; one-shot runs only (workspaces: use gvisor)` };
    } catch {
      return { available: false, detail: `${QEMU} is not installed (apt-get install qemu-system-x86)` };
    }
  }

  /** KVM when a probe boot under it reaches the initramfs in time, else TCG; cached per host. */
  accelFor(guest: GuestKernel, dir: string): Promise<Accel> {
    this.accel ??= (async () => {
      const cache = join(dir, "kvm-verdict.json");
      const cached = await readFile(cache, "utf8").then(
        (t) => JSON.parse(t) as { accel: Accel },
        () => undefined,
      );
      if (cached) return cached.accel;
      const accel: Accel = (await this.kvmBoots(guest)) ? "kvm" : "tcg";
      await writeFile(`${cache}.tmp`, JSON.stringify({ accel, probed_at: new Date().toISOString() }));
      await rename(`${cache}.tmp`, cache);
      return accel;
    })();
    return this.accel;
  }

  private async kvmBoots(guest: GuestKernel): Promise<boolean> {
    const child = spawn(
      QEMU,
      [
        ...["-M", "microvm", "-accel", "kvm", "-m", "256", "-nographic", "-no-reboot"],
        ...["-kernel", guest.kernel, "-initrd", guest.initrd, "-append", "console=ttyS0 quiet panic=-1 pyro.probe"],
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    return new Promise((resolve) => {
      let out = "";
      const timer = setTimeout(() => child.kill("SIGKILL"), KVM_PROBE_MS);
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
      });
      child.once("exit", () => {
        clearTimeout(timer);
        resolve(out.includes("PYRO-PROBE-OK"));
      });
      child.once("error", () => resolve(false));
    });
  }

  async start(_spec: SandboxSpec): Promise<Sandbox> {
    throw new PyroError(
      "ENGINE_UNAVAILABLE",
      "persistent workspaces on the qemu engine are not in this release; create them with --engine gvisor",
    );
  }

  async runOnce(spec: SandboxSpec, exec: OneShotExec): Promise<AgentExecResult> {
    if (spec.network !== "off") {
      throw new PyroError(
        "ENGINE_UNAVAILABLE",
        "networking on the qemu engine is not in this release; use --engine gvisor",
      );
    }
    const dir = qemuDir(spec.environment.rootDir);
    const guest = await ensureGuestKernel(dir);
    const image = await ensureRootImage(spec.environment.rootDir);
    const accel = await this.accelFor(guest, dir);
    await mkdir(spec.runDir, { recursive: true });
    const files = {
      script: join(spec.runDir, "script.sh"),
      stdout: join(spec.runDir, "stdout"),
      stderr: join(spec.runDir, "stderr"),
      exit: join(spec.runDir, "exit"),
    };
    await writeFile(files.script, guestScript(exec));
    const port = (id: string, path: string) => [
      "-chardev",
      `file,id=${id},path=${path}`,
      "-device",
      `virtserialport,chardev=${id},name=pyro.${id}`,
    ];
    const args = [
      ...["-M", accel === "kvm" ? "microvm" : "pc", "-accel", accel],
      ...["-m", String(spec.memMib), "-smp", String(spec.vcpuCount)],
      ...["-display", "none", "-serial", "none", "-monitor", "none", "-nodefaults", "-no-reboot"],
      ...["-kernel", guest.kernel, "-initrd", guest.initrd, "-append", "console=ttyS0 quiet panic=-1"],
      ...["-drive", `file=${image},format=raw,if=virtio,readonly=on`],
      ...["-fw_cfg", `name=opt/pyro/script,file=${files.script}`],
      ...["-device", "virtio-serial-pci"],
      ...port("stdout", files.stdout),
      ...port("stderr", files.stderr),
      ...port("exit", files.exit),
    ];
    spec.log(`qemu: ${QEMU} ${args.join(" ")}`);
    const started = Date.now();
    // The VM dies with its caller, as a one-shot gvisor sandbox does.
    const child: ChildProcess = spawn("setpriv", ["--pdeathsig", "KILL", "--", QEMU, ...args], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let qemuErr = "";
    child.stderr?.on("data", (c: Buffer) => {
      qemuErr = (qemuErr + c.toString()).slice(-4000);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, exec.timeoutMs);
    const onAbort = () => child.kill("SIGKILL");
    exec.signal?.addEventListener("abort", onAbort, { once: true });
    const exit = await new Promise<{ code: number | null; error?: Error }>((resolve) => {
      child.once("exit", (code) => resolve({ code }));
      child.once("error", (error) => resolve({ code: null, error }));
    });
    clearTimeout(timer);
    exec.signal?.removeEventListener("abort", onAbort);
    if (exit.error) throw new PyroError("SANDBOX_START_FAILED", `${QEMU} did not start: ${exit.error.message}`);

    const caps = { stdout: new OutputCap(exec.maxOutputBytes), stderr: new OutputCap(exec.maxOutputBytes) };
    const read = (path: string) => readFile(path).catch(() => Buffer.alloc(0));
    const out = caps.stdout.take(await read(files.stdout));
    const err = caps.stderr.take(await read(files.stderr));
    if (out.length) exec.onData(1, out);
    if (err.length) exec.onData(2, err);
    const reported = (await read(files.exit)).toString().trim();
    let exitCode: number;
    if (timedOut) exitCode = TIMEOUT_EXIT_CODE;
    else if (/^\d+$/.test(reported)) exitCode = Number(reported);
    else {
      throw new PyroError(
        "SANDBOX_NOT_RUNNING",
        `the qemu VM ended (exit ${exit.code}) without reporting the command's exit code${qemuErr ? `: ${qemuErr.trim()}` : ""}`,
      );
    }
    return {
      exit_code: exitCode,
      signal: null,
      timed_out: timedOut,
      stdout_truncated: caps.stdout.truncated,
      stderr_truncated: caps.stderr.truncated,
      duration_ms: Date.now() - started,
    };
  }

  workspaceLayer(runDir: string): string {
    return join(runDir, "workspace");
  }

  async withFrozenWorkspace<T>(): Promise<T | undefined> {
    return undefined;
  }

  async thawAbandoned(): Promise<void> {}

  /** A one-shot VM dies with its caller's kill; its run directory is removed by the owner. */
  async cleanup(): Promise<string[]> {
    return [];
  }
}
