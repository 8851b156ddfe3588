// Owns the qemu engine: a real guest kernel (Debian's cloud kernel) behind a hardware-style
// boundary. A new sandbox is restored from a VM saved once per environment and machine shape (see
// template.ts), given an identity of its own, and handed its /workspace: a host directory shared
// by virtio-fs, so seeding, diffs, snapshots and disk tools work on the host as with gvisor. Its
// root disk is a qcow2 overlay that outlives the VM; a stopped sandbox boots from it cold. The
// agent speaks on a virtio-serial port. Egress runs QEMU's user networking inside a namespace of
// the sandbox's own (the gvisor engine's, with slirp4netns), so the host's loopback is out of reach.
// KVM is used only when a bounded probe boot shows it can run a stock kernel; otherwise TCG.
// A one-shot run is such a sandbox asked for one exec, then killed.

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm } from "node:fs/promises";
import { createConnection, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { callAgent } from "../../channel/agent-ops.js";
import { Channel } from "../../channel/channel.js";
import { type AgentExecResult, AgentOp, EXEC_ANSWER_GRACE_MS, GuestOp } from "../../channel/protocol.js";
import { DEFAULTS } from "../../contract/defaults.js";
import { PyroError } from "../../contract/errors.js";
import { GATEWAY_NET } from "../../egress/addresses.js";
import type { InstalledEnvironment } from "../../environments/index.js";
import { privilegeUnavailable } from "../../rootless/mode.js";
import { logStderrLines, settlesWithin } from "../../util/children.js";
import { resolvePaths } from "../../util/paths.js";
import { PYRO_VERSION } from "../../version.js";
import { placeInCgroup, removeCgroups } from "../cgroups.js";
import { sandboxLeftovers } from "../checks.js";
import { type Freezer, thawAbandoned, withFrozen } from "../freeze.js";
import { cleanupSandboxNetwork, networkFor, nsenterPrefix, type SandboxNetwork } from "../network.js";
import type { DoctorCheck, Engine, EngineProbe, OneShotExec, Sandbox, SandboxExit, SandboxSpec } from "../types.js";
import { ensureGuestKernel, ensureRootImage, type GuestKernel } from "./guest.js";
import {
  describeKvm,
  KVM_DEVICE,
  KVM_PROBE_MS,
  type KvmReport,
  readKvmState,
  readVerdict,
  writeVerdict,
} from "./kvm.js";
import {
  type Accel,
  fsDevice,
  machineArgs,
  processesOf,
  QEMU,
  restoresSavedVm,
  spawnTied,
  sq,
  startVirtiofsd,
  vmFiles,
} from "./machine.js";
import { pruneQemuCache, recordUser } from "./prune.js";
import { hmp, qmp } from "./qmp.js";
import { createOverlay, ensureTemplate, IGNORE_SHARED, type Template } from "./template.js";

const run = promisify(execFile);
/** How long a VM has to reach its agent socket after QEMU starts. */
const SOCKET_WAIT_MS = 30_000;
/** The guest's setup mounts /workspace (up to its own 20 s mount timeout) and resets its identity. */
const GUEST_SETUP_DEADLINE_MS = 60_000;

function qemuDirOf(rootDir: string): string {
  // <cache>/environments/<slug>/rootfs -> <cache>/qemu
  return join(dirname(dirname(dirname(rootDir))), "qemu");
}

/** The qemu cache beside the default environment store (for probe and doctor, which have no
 * environment to derive it from). */
function qemuHome(): string {
  return join(resolvePaths().cacheDir, "qemu");
}

function verdictFile(dir: string): string {
  return join(dir, "kvm-verdict.json");
}

/** What is known of KVM on this host without booting anything: its state and the cached verdict. */
async function kvmReport(): Promise<KvmReport> {
  return describeKvm(await readKvmState(), await readVerdict(verdictFile(qemuHome())));
}

/** Host tasks of one VM (QEMU's vCPU, I/O and worker threads, and virtiofsd's): a backstop, since
 * the guest's processes are the guest kernel's and never host tasks. */
const QEMU_TASK_LIMIT = 512;

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
    const denied = privilegeUnavailable();
    if (denied) return { available: false, detail: `${version} found, but ${denied}` };
    // `auto` prefers gvisor to software emulation; a KVM that boots a stock kernel beats both.
    const kvm = await kvmReport();
    return { available: true, auto: kvm.auto, detail: `${version} ${kvm.engine}` };
  }

  /** Runs the bounded KVM probe boot now if it never ran (for pyro doctor). */
  async probeAccel(): Promise<Accel> {
    return this.accelFor(await ensureGuestKernel(qemuHome()), qemuHome());
  }

  /** TCG without a usable /dev/kvm; else KVM when a probe boot under it reaches the initramfs in
   * time. The probe's verdict is cached for this host's KVM state. */
  accelFor(guest: GuestKernel, dir: string): Promise<Accel> {
    this.accel ??= (async () => {
      const state = await readKvmState();
      const cache = verdictFile(dir);
      const report = describeKvm(state, await readVerdict(cache));
      if (state.device !== "present" || !report.unprobed) return report.accel;
      const accel: Accel = (await this.kvmBoots(guest)) ? "kvm" : "tcg";
      await writeVerdict(cache, { accel, probed_at: new Date().toISOString(), key: state.key });
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

  async prepareEnvironment(environment: InstalledEnvironment): Promise<Record<string, unknown>> {
    const guest = await ensureGuestKernel(qemuDirOf(environment.rootDir));
    return {
      kernel_package: guest.package,
      kernel_release: guest.release,
      kernel: guest.kernel,
      initrd: guest.initrd,
      initramfs_digest: guest.initramfs_digest,
      root_image: await ensureRootImage(environment),
    };
  }

  async pruneCache(
    environments: InstalledEnvironment[],
    sandboxDirs: string[],
  ): Promise<{ removed: string[]; freed_bytes: number }> {
    const disks = sandboxDirs.map((d) => vmFiles(d).root).filter((f) => existsSync(f));
    const qemuDir = environments[0] ? qemuDirOf(environments[0].rootDir) : qemuHome();
    const kernel = await readFile(join(qemuDir, "kernel.json"), "utf8").then(
      (t) => JSON.parse(t) as GuestKernel,
      () => undefined,
    );
    // No current initramfs (never built): nothing restorable to tell apart, so nothing is pruned.
    if (!kernel) return { removed: [], freed_bytes: 0 };
    return pruneQemuCache({ qemuDir, environments, disks, initrd: kernel.initrd });
  }

  /** Restores a new sandbox from the saved VM, or boots a stopped one from its own disk. */
  async start(spec: SandboxSpec): Promise<QemuSandbox> {
    const dir = qemuDirOf(spec.environment.rootDir);
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
      if (restoresSavedVm(accel)) {
        restoreFrom = await ensureTemplate(dir, image, guest, shape, spec.log);
        await createOverlay(`${files.root}.tmp`, restoreFrom.root, "qcow2");
      } else {
        await createOverlay(`${files.root}.tmp`, image, "raw");
      }
      await rename(`${files.root}.tmp`, files.root);
      await recordUser(restoreFrom?.root ?? image, files.root);
    }
    const started = Date.now();
    let network: SandboxNetwork | undefined;
    let fsd: Awaited<ReturnType<typeof startVirtiofsd>> | undefined;
    let child: ChildProcess | undefined;
    try {
      if (restoreFrom) await copyMemory(restoreFrom.ram, files.ram);
      network = await networkFor(spec);
      fsd = await startVirtiofsd(files, spec.log);
      const args = [
        ...machineArgs({ ...shape, guest, files, ramInFile: restoreFrom !== undefined }),
        ...(restoreFrom ? ["-incoming", "defer"] : fsDevice(files).args),
      ];
      spec.log(`qemu: ${QEMU} ${args.join(" ")}`);
      child = spawnTied([QEMU, ...args], network ? nsenterPrefix(network) : []);
      logStderrLines(child, "qemu", spec.log);
      const uncapped = await placeInCgroup(
        spec.id,
        [child.pid, fsd.child.pid].filter((pid): pid is number => pid !== undefined),
        { vcpuCount: spec.vcpuCount, tasks: QEMU_TASK_LIMIT },
      );
      if (uncapped) spec.log(`qemu: no host cgroup (${uncapped}): its CPU time and tasks are not capped`);
      const sandbox = new QemuSandbox(spec, child, fsd.child, network);
      const socket = await connectAgent(files.agent, sandbox.exited);
      if (restoreFrom) {
        await waitForQmp(files.qmp, sandbox.exited);
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

  /** A one-shot run is a sandbox like any other (restored from the saved VM), asked for one exec
   * through its agent and then discarded: nothing of its disk is kept, so nothing is synced. */
  async runOnce(spec: SandboxSpec, exec: OneShotExec): Promise<AgentExecResult> {
    const sandbox = await this.start(spec);
    const agent = new Channel(sandbox.channel, {
      role: "client",
      hello: { name: "pyro-run", version: PYRO_VERSION, capabilities: [] },
    });
    try {
      let timer: NodeJS.Timeout | undefined;
      const readyMs = DEFAULTS.sandboxReadySeconds * 1000;
      await Promise.race([
        agent.ready,
        sandbox.exited.then((exit) => {
          throw new PyroError("SANDBOX_START_FAILED", `the VM ended before its agent was ready: ${exit.reason ?? ""}`);
        }),
        // A VM that runs but whose agent never answers must not hold the run forever.
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new PyroError(
                  "SANDBOX_START_FAILED",
                  `the VM's agent did not answer within ${readyMs / 1000} s; see pyro doctor, and retry`,
                ),
              ),
            readyMs,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      await sandbox.setup(agent);
      return await callAgent(
        agent,
        AgentOp.EXEC,
        {
          argv: exec.argv,
          cwd: exec.cwd,
          env: exec.env,
          timeout_ms: exec.timeoutMs,
          max_output_bytes: exec.maxOutputBytes,
        },
        { onData: exec.onData, signal: exec.signal, deadlineMs: exec.timeoutMs + EXEC_ANSWER_GRACE_MS },
      );
    } finally {
      agent.close();
      await sandbox.discard();
    }
  }

  workspaceLayer(runDir: string): string {
    return vmFiles(runDir).workspace;
  }

  /** virtiofsd serves the directory itself, uncached (cache=none): the guest sees host writes at once. */
  workspaceWritable(runDir: string): string {
    return vmFiles(runDir).workspace;
  }

  /** The shared directory, and the root disk: the next start restores a fresh VM from the saved one. */
  resetDiscards(runDir: string): string[] {
    const files = vmFiles(runDir);
    return [files.root, files.console];
  }

  /** The guest writes /workspace through virtio-fs without caching (cache=none), so a paused VM's
   * shared directory is exactly its /workspace. */
  async withFrozenWorkspace<T>(
    _id: string,
    runDir: string,
    fn: (layer: string) => Promise<T>,
    discard?: string,
  ): Promise<T | undefined> {
    return withFrozen(runDir, qmpFreezer(runDir), () => fn(this.workspaceLayer(runDir)), discard);
  }

  async thawAbandoned(_id: string, runDir: string): Promise<void> {
    await thawAbandoned(runDir, qmpFreezer(runDir));
  }

  /** What a dead supervisor left: its VM and virtiofsd (normally killed with it), sockets, the
   * network namespace. */
  async doctorChecks(probe: EngineProbe): Promise<DoctorCheck[]> {
    return [await kvmCheck(probe.available)];
  }

  leftovers(id: string, runDir: string, host: { mounts: string[]; namespaces: string[] }): string[] {
    return sandboxLeftovers(id, runDir, host);
  }

  async cleanup(id: string, runDir: string): Promise<string[]> {
    const cleaned: string[] = [];
    const files = vmFiles(runDir);
    // Every boot cleans up first; only a VM that was not stopped cleanly leaves its pid file or
    // sockets, so /proc is searched only then.
    const leftBehind = [files.pid, files.agent, files.fs].some((f) => existsSync(f));
    for (const pid of leftBehind ? await processesOf(runDir) : []) {
      try {
        process.kill(pid, "SIGKILL");
        cleaned.push(`process ${pid}`);
      } catch {}
    }
    cleaned.push(...(await cleanupSandboxNetwork(id, runDir)));
    cleaned.push(...(await removeCgroups(id)).map((d) => `cgroup ${d}`));
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

/** The saved VM's memory, holes and all, as this VM's own (a file in tmpfs QEMU maps shared). */
async function copyMemory(from: string, to: string): Promise<void> {
  try {
    await run("cp", ["--sparse=always", from, to]);
  } catch (err) {
    throw new PyroError(
      "SANDBOX_START_FAILED",
      `could not copy the saved VM's memory to ${to}: ${(err as { stderr?: string }).stderr?.trim() || err}; each running qemu sandbox keeps the memory it uses in /dev/shm, so free room there (df -h /dev/shm) or stop other sandboxes`,
    );
  }
}

/** Retries `attempt` while QEMU is still making its sockets: until it works, QEMU exits, or the
 * wait is over. */
async function whileStarting<T>(exited: Promise<SandboxExit>, attempt: () => Promise<T>): Promise<T> {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + SOCKET_WAIT_MS;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (gone)
        throw new PyroError("SANDBOX_START_FAILED", "QEMU exited before the VM started; see the supervisor log");
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

/** Connects to the agent's port socket once QEMU has made it. */
function connectAgent(path: string, exited: Promise<SandboxExit>): Promise<Socket> {
  return whileStarting(
    exited,
    () =>
      new Promise<Socket>((resolve, reject) => {
        const s = createConnection(path);
        s.once("connect", () => resolve(s));
        s.once("error", () => reject(new PyroError("SANDBOX_START_FAILED", `QEMU made no agent socket at ${path}`)));
      }),
  );
}

/** QEMU makes its QMP socket after the agent's; a connection can be refused until it listens. */
async function waitForQmp(path: string, exited: Promise<SandboxExit>): Promise<void> {
  await whileStarting(exited, () => qmp(path, []));
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
  /** Guest ports QEMU already forwards from the namespace (added once per VM). */
  private readonly guestForwards = new Set<number>();
  /** pyro sent QEMU its SIGKILL (discard, or a stop it did not obey). */
  private killedHere = false;
  private readonly files: ReturnType<typeof vmFiles>;

  get netnsPath(): string | undefined {
    return this.network?.nsPath;
  }

  constructor(
    private readonly spec: SandboxSpec,
    private readonly child: ChildProcess,
    private readonly virtiofsd: ChildProcess,
    private readonly network: SandboxNetwork | undefined,
  ) {
    this.files = vmFiles(spec.runDir);
    this.exited = new Promise((resolve) => {
      child.once("exit", async (code, signal) => {
        spec.log(`qemu: exited code=${code} signal=${signal}`);
        virtiofsd.kill("SIGKILL");
        await removeCgroups(spec.id);
        // A stop may already be under way (the agent's channel closes as QEMU dies), so a SIGKILL
        // pyro did not send is the cause whoever asked for the stop.
        const reason =
          signal === "SIGKILL" && !this.killedHere
            ? "the VM was killed from outside"
            : this.stopping
              ? undefined
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
    const result = await callAgent(
      agent,
      GuestOp.SETUP,
      {
        entropy: randomBytes(64).toString("base64"),
        time_ms: Date.now(),
        hostname: "pyro",
        machine_id: randomBytes(16).toString("hex"),
        mounts: [{ tag: "workspace", target: "/workspace" }],
        ...(this.spec.network === "allowlist" ? { nameserver: GATEWAY_NET.resolver } : {}),
      },
      { deadlineMs: GUEST_SETUP_DEADLINE_MS },
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
    // QEMU's forward stays for the VM's life (a port published again reuses it); a failure to add
    // it is the caller's failure, never a port that only reads as published.
    if (!this.guestForwards.has(guestPort)) {
      await hmp(this.files.qmp, `hostfwd_add net0 tcp::${guestPort}-:${guestPort}`).catch((err: Error) => {
        throw new PyroError(
          "PORT_UNAVAILABLE",
          `QEMU could not forward guest port ${guestPort} (${err.message}); publish another guest port, or restart the workspace`,
        );
      });
      this.guestForwards.add(guestPort);
    }
    return this.network.addHostForward(hostPort, guestPort);
  }

  async unpublishPort(id: number): Promise<void> {
    await this.network?.removeHostForward(id);
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  /** Ends the VM at once, for a sandbox whose disk nobody will use again. */
  discard(): Promise<void> {
    this.stopping ??= (async () => {
      this.killedHere = true;
      this.child.kill("SIGKILL");
      await settlesWithin(this.exited, 5_000);
      await this.release();
    })();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    // Closing the channel ends the agent; the init then syncs the disk and powers off.
    this.socket?.end();
    if (!(await settlesWithin(this.exited, 5_000))) {
      await qmp(this.files.qmp, [{ execute: "quit" }], 2_000).catch(() => {});
      if (!(await settlesWithin(this.exited, 2_000))) {
        this.killedHere = true;
        this.child.kill("SIGKILL");
      }
      await settlesWithin(this.exited, 2_000);
    }
    await this.release();
  }

  private async release(): Promise<void> {
    this.virtiofsd.kill("SIGKILL");
    await this.network?.teardown().catch((err: Error) => this.spec.log(`qemu: network teardown: ${err.message}`));
    for (const f of [this.files.agent, this.files.qmp, this.files.fs, this.files.pid, this.files.ram]) {
      await rm(f, { force: true });
    }
  }
}

/** pyro doctor's KVM line: the host's KVM state and, where a device can be used, the verdict of the
 * bounded probe boot, probing now if it never ran on this state (fetching the guest kernel first). */
export async function kvmCheck(qemuInstalled: boolean): Promise<{ name: string; ok: boolean; detail: string }> {
  const state = await readKvmState();
  if (!qemuInstalled) {
    return {
      name: "kvm",
      ok: true,
      detail:
        state.device === "absent"
          ? `${KVM_DEVICE} is absent: microVM engines would use software emulation`
          : `${KVM_DEVICE} exists; install qemu-system-x86 to find out whether it boots stock kernels`,
    };
  }
  try {
    if (describeKvm(state, await readVerdict(verdictFile(qemuHome()))).unprobed) await new QemuEngine().probeAccel();
    return { name: "kvm", ok: true, detail: (await kvmReport()).doctor };
  } catch (err) {
    return { name: "kvm", ok: false, detail: `could not probe KVM: ${(err as Error).message}` };
  }
}
