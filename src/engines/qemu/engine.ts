// Owns the qemu engine: a real guest kernel (Debian's cloud kernel) behind a hardware-style
// boundary. A new sandbox is restored from a VM saved once per environment and machine shape (see
// template.ts), given an identity of its own, and handed its /workspace: a host directory shared
// by virtio-fs, so seeding, diffs, snapshots and disk tools work on the host as with gvisor. Its
// root disk is a qcow2 overlay that outlives the VM; a stopped sandbox boots from it cold. The
// agent speaks on a virtio-serial port. Egress runs QEMU's user networking inside a namespace of
// the sandbox's own (the gvisor engine's, with slirp4netns), so the host's loopback is out of reach.
// KVM is used only when a bounded probe boot shows it can run a stock kernel; otherwise TCG.
// One-shot runs boot straight into the command (no agent, no saved VM).
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { createConnection, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import type { Channel } from "../../channel/channel.js";
import { OutputCap, TIMEOUT_EXIT_CODE } from "../../channel/output.js";
import { type AgentExecResult, AgentGuestSetupResult, GuestOp } from "../../channel/protocol.js";
import { PyroError } from "../../contract/errors.js";
import { type Freezer, thawAbandoned, withFrozen } from "../freeze.js";
import { cleanupSandboxNetwork, createSandboxNetwork, nsenterPrefix, type SandboxNetwork } from "../gvisor/network.js";
import type { Engine, EngineProbe, OneShotExec, Sandbox, SandboxExit, SandboxSpec } from "../types.js";
import { ensureGuestKernel, ensureRootImage, type GuestKernel } from "./guest.js";
import {
  type Accel,
  fsDevice,
  machineArgs,
  pipeLines,
  processesOf,
  QEMU,
  spawnTied,
  sq,
  startVirtiofsd,
  vmFiles,
} from "./machine.js";
import { hmp, qmp } from "./qmp.js";
import { createOverlay, ensureTemplate, IGNORE_SHARED, type Template } from "./template.js";

const run = promisify(execFile);
/** How long a KVM probe boot may take before KVM is judged unable to run a stock kernel. */
const KVM_PROBE_MS = 8_000;
/** How long a VM has to reach its agent socket after QEMU starts. */
const SOCKET_WAIT_MS = 30_000;

function qemuDir(rootDir: string): string {
  // <cache>/environments/<slug>/rootfs -> <cache>/qemu
  return join(dirname(dirname(dirname(rootDir))), "qemu");
}

/** The qemu cache of the default environment store (for doctor, which has no environment). */
function qemuHome(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? "/root", ".cache"), "pyro", "qemu");
}

function readVerdict(path: string): Promise<{ accel: Accel; probed_at: string } | undefined> {
  return readFile(path, "utf8").then(
    (t) => JSON.parse(t) as { accel: Accel; probed_at: string },
    () => undefined,
  );
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
    let version: string;
    try {
      const { stdout } = await run(QEMU, ["--version"], { timeout: 5_000 });
      version = stdout.split("\n")[0]?.replace("QEMU emulator version", "QEMU").trim() ?? QEMU;
    } catch {
      return { available: false, detail: `${QEMU} is not installed (apt-get install qemu-system-x86)` };
    }
    const verdict = await readVerdict(join(qemuHome(), "kvm-verdict.json"));
    // `auto` prefers gvisor to software emulation; a KVM that boots a stock kernel beats both.
    if (!verdict)
      return { available: true, auto: false, detail: `${version}; KVM not probed yet (pyro doctor probes it)` };
    return verdict.accel === "kvm"
      ? { available: true, auto: true, detail: `${version} with KVM (probe boot ok ${verdict.probed_at})` }
      : {
          available: true,
          auto: false,
          detail: `${version} under TCG (software emulation): a probe boot under KVM did not reach the guest in ${KVM_PROBE_MS / 1000} s (${verdict.probed_at})`,
        };
  }

  /** Runs the bounded KVM probe boot now if it never ran (for pyro doctor). */
  async probeAccel(): Promise<Accel> {
    return this.accelFor(await ensureGuestKernel(qemuHome()), qemuHome());
  }

  /** KVM when a probe boot under it reaches the initramfs in time, else TCG; cached per host. */
  accelFor(guest: GuestKernel, dir: string): Promise<Accel> {
    this.accel ??= (async () => {
      const cache = join(dir, "kvm-verdict.json");
      const cached = await readVerdict(cache);
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

  /** Restores a new sandbox from the saved VM, or boots a stopped one from its own disk. */
  async start(spec: SandboxSpec): Promise<Sandbox> {
    const dir = qemuDir(spec.environment.rootDir);
    const guest = await ensureGuestKernel(dir);
    const image = await ensureRootImage(spec.environment);
    const accel = await this.accelFor(guest, dir);
    const files = vmFiles(spec.runDir);
    await mkdir(files.workspace, { recursive: true });
    for (const f of [files.agent, files.qmp, files.fs, files.pid, files.console]) await rm(f, { force: true });
    const shape = { accel, memMib: spec.memMib, vcpuCount: spec.vcpuCount, nic: spec.network !== "off" };
    // A restore needs the disk exactly as it was saved with the memory: only a new sandbox has that.
    let restoreFrom: Template | undefined;
    if (!existsSync(files.root)) {
      restoreFrom = await ensureTemplate(dir, image, guest, shape, spec.log);
      await createOverlay(`${files.root}.tmp`, restoreFrom.root, "qcow2");
      await rename(`${files.root}.tmp`, files.root);
      await run("cp", ["--sparse=always", restoreFrom.ram, files.ram]);
    }
    const started = Date.now();
    let network: SandboxNetwork | undefined;
    let fsd: Awaited<ReturnType<typeof startVirtiofsd>> | undefined;
    let child: ChildProcess | undefined;
    try {
      if (spec.network !== "off") network = await createSandboxNetwork(spec.id, spec.runDir);
      fsd = await startVirtiofsd(files, spec.log);
      const args = [
        ...machineArgs({ ...shape, guest, files, ramInFile: restoreFrom !== undefined }),
        ...(restoreFrom ? ["-incoming", "defer"] : fsDevice(files).args),
      ];
      spec.log(`qemu: ${QEMU} ${args.join(" ")}`);
      child = spawnTied([QEMU, ...args], network ? nsenterPrefix(network) : []);
      pipeLines(child, "qemu", spec.log);
      const sandbox = new QemuSandbox(spec, child, fsd.child, network);
      const socket = await connectAgent(files.agent, sandbox.exited);
      if (restoreFrom) {
        await qmp(files.qmp, [
          IGNORE_SHARED,
          { execute: "migrate-incoming", arguments: { uri: `exec:cat ${sq(restoreFrom.memory)}` } },
        ]);
        await waitIncoming(files.qmp);
        // QEMU has the memory mapped; the name is no longer needed, and nothing is left behind.
        await rm(files.ram, { force: true });
        await qmp(files.qmp, [...fsDevice(files).qmp, { execute: "cont" }]);
      }
      spec.log(`qemu: ${restoreFrom ? "restored" : "booting"} in ${Date.now() - started} ms`);
      sandbox.attach(socket);
      return sandbox;
    } catch (err) {
      child?.kill("SIGKILL");
      fsd?.child.kill("SIGKILL");
      await rm(files.ram, { force: true });
      await network?.teardown().catch(() => {});
      throw err;
    }
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
    const image = await ensureRootImage(spec.environment);
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

  /** The guest writes /workspace through virtio-fs without caching (cache=none), so a paused VM's
   * shared directory is exactly its /workspace. */
  async withFrozenWorkspace<T>(_id: string, runDir: string, fn: (layer: string) => Promise<T>): Promise<T | undefined> {
    return withFrozen(runDir, qmpFreezer(runDir), () => fn(this.workspaceLayer(runDir)));
  }

  async thawAbandoned(_id: string, runDir: string): Promise<void> {
    await thawAbandoned(runDir, qmpFreezer(runDir));
  }

  /** What a dead supervisor left: its VM and virtiofsd (normally killed with it), sockets, the
   * network namespace. */
  async cleanup(id: string, runDir: string): Promise<string[]> {
    const cleaned: string[] = [];
    for (const pid of await processesOf(runDir)) {
      try {
        process.kill(pid, "SIGKILL");
        cleaned.push(`process ${pid}`);
      } catch {}
    }
    cleaned.push(...(await cleanupSandboxNetwork(id, runDir)));
    const files = vmFiles(runDir);
    if (existsSync(files.ram)) cleaned.push(`memory file ${files.ram}`);
    for (const f of [files.agent, files.qmp, files.fs, files.pid, files.ram]) await rm(f, { force: true });
    return cleaned;
  }
}

function qmpFreezer(runDir: string): Freezer {
  const socket = vmFiles(runDir).qmp;
  return {
    pause: async () => void (await qmp(socket, [{ execute: "stop" }])),
    resume: async () => void (await qmp(socket, [{ execute: "cont" }])),
  };
}

/** Connects to the agent's port socket once QEMU has made it. */
async function connectAgent(path: string, exited: Promise<SandboxExit>): Promise<Socket> {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + SOCKET_WAIT_MS;
  for (;;) {
    if (gone) throw new PyroError("SANDBOX_START_FAILED", "QEMU exited before the VM started; see the supervisor log");
    const socket = await new Promise<Socket | undefined>((resolve) => {
      const s = createConnection(path);
      s.once("connect", () => resolve(s));
      s.once("error", () => resolve(undefined));
    });
    if (socket) return socket;
    if (Date.now() > deadline) throw new PyroError("SANDBOX_START_FAILED", `QEMU made no agent socket at ${path}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Waits for QEMU to finish loading a saved VM (it stays paused: it was saved paused). */
async function waitIncoming(qmpSocket: string): Promise<void> {
  for (;;) {
    const [status] = (await qmp(qmpSocket, [{ execute: "query-status" }])) as Array<{ status: string }>;
    if (status?.status !== "inmigrate") {
      if (status?.status === "paused" || status?.status === "running" || status?.status === "postmigrate") return;
      throw new PyroError("SANDBOX_START_FAILED", `QEMU could not load the saved VM (state ${status?.status})`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

class QemuSandbox implements Sandbox {
  readonly engine = "qemu" as const;
  readonly exited: Promise<SandboxExit>;
  private socket: Socket | undefined;
  private stopping: Promise<void> | undefined;
  private readonly files: ReturnType<typeof vmFiles>;

  constructor(
    private readonly spec: SandboxSpec,
    private readonly child: ChildProcess,
    private readonly virtiofsd: ChildProcess,
    private readonly network: SandboxNetwork | undefined,
  ) {
    this.files = vmFiles(spec.runDir);
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        spec.log(`qemu: exited code=${code} signal=${signal}`);
        virtiofsd.kill("SIGKILL");
        const reason = this.stopping
          ? undefined
          : signal === "SIGKILL"
            ? "the VM was killed from outside"
            : `the VM powered off or QEMU exited (code ${code}); see ${this.files.console}`;
        resolve({ code, signal, reason });
      });
      child.once("error", (err) => {
        spec.log(`qemu: failed to start: ${err.message}`);
        resolve({ code: null, signal: null });
      });
    });
  }

  attach(socket: Socket): void {
    this.socket = socket;
    // A write after the VM died must surface as a closed channel, not crash the supervisor.
    socket.on("error", () => {});
  }

  get channel(): Socket {
    return this.socket!;
  }

  /** A restored VM wakes with the saved VM's clock, random state and identity: it gets its own
   * before anyone is served, and mounts its /workspace (a cold boot mounts it the same way). */
  async setup(agent: Channel): Promise<void> {
    const result = AgentGuestSetupResult.parse(
      await agent.request(GuestOp.SETUP, {
        entropy: randomBytes(64).toString("base64"),
        time_ms: Date.now(),
        hostname: "pyro",
        machine_id: randomBytes(16).toString("hex"),
        mounts: [{ tag: "workspace", target: "/workspace" }],
      }),
    );
    this.spec.log(
      `qemu: guest set up in ${result.duration_ms} ms (crng ${result.crng_reseeded ? "rekeyed" : "mixed only"}, mounted ${result.mounted.join(", ")})`,
    );
  }

  pids(): number[] {
    return [this.child.pid, this.virtiofsd.pid].filter((p): p is number => p !== undefined);
  }

  async publishPort(hostPort: number, guestPort: number): Promise<{ id: number; host_port: number }> {
    if (!this.network) throw new PyroError("NETWORK_POLICY_DENIED", "this sandbox has no network to publish from");
    // QEMU forwards the namespace's port to the guest; slirp4netns forwards the host's to the namespace.
    await hmp(this.files.qmp, `hostfwd_add net0 tcp::${guestPort}-:${guestPort}`).catch(() => {});
    return this.network.addHostForward(hostPort, guestPort);
  }

  async unpublishPort(id: number): Promise<void> {
    await this.network?.removeHostForward(id);
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    // Closing the channel ends the agent; the init then syncs the disk and powers off.
    this.socket?.end();
    if (!(await settles(this.exited, 5_000))) {
      await qmp(this.files.qmp, [{ execute: "quit" }], 2_000).catch(() => {});
      if (!(await settles(this.exited, 2_000))) this.child.kill("SIGKILL");
      await settles(this.exited, 2_000);
    }
    this.virtiofsd.kill("SIGKILL");
    await this.network?.teardown().catch((err: Error) => this.spec.log(`qemu: network teardown: ${err.message}`));
    for (const f of [this.files.agent, this.files.qmp, this.files.fs, this.files.pid]) await rm(f, { force: true });
  }
}

function settles(p: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
}
