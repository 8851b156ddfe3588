// Owns the gvisor engine: runsc with the environment as the read-only lower layer of a host
// overlay, the agent as the container process speaking over runsc's stdio pipes, and (for
// egress policies) a per-sandbox network namespace that runsc joins with --network=host.

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Duplex } from "node:stream";
import { promisify } from "node:util";
import type { AgentExecResult } from "../../channel/protocol.js";
import { PyroError } from "../../contract/errors.js";
import { isRootless, privilegeUnavailable } from "../../rootless/mode.js";
import { logStderrLines, settlesWithin } from "../../util/children.js";
import { removeCgroups } from "../cgroups.js";
import { hostToolCheck, sandboxLeftovers } from "../checks.js";
import { type Freezer, thawAbandoned, withFrozen } from "../freeze.js";
import { isMounted, mountOverlay, unmount } from "../mounts.js";
import { cleanupSandboxNetwork, networkFiles, networkFor, nsenterPrefix, type SandboxNetwork } from "../network.js";
import {
  DISK_DIR,
  type DoctorCheck,
  type Engine,
  type EngineProbe,
  type OneShotExec,
  type Sandbox,
  type SandboxExit,
  type SandboxSpec,
} from "../types.js";
import { buildOciSpec, gvisorGuestFiles, runscCgroupFlags } from "./oci.js";
import { runOnceGvisor } from "./oneshot.js";

const run = promisify(execFile);
const RUNSC = "runsc";

export function gvisorDirs(runDir: string) {
  return {
    upper: join(runDir, DISK_DIR, "upper"),
    work: join(runDir, DISK_DIR, "work"),
    rootfs: join(runDir, "rootfs"),
    bundle: join(runDir, "bundle"),
    runscRoot: join(runDir, "runsc"),
  };
}

/**
 * Runs a runsc command on sandbox `id`. A sandbox with a network runs in its own namespace, and this
 * runsc judges a sandbox alive only from inside the namespace it was started in: from outside it
 * reads as "stopped", and pause, kill and delete fail or do nothing. So they run in it too.
 */
async function runsc(id: string, runDir: string, args: string[]): Promise<void> {
  const { nsPath } = networkFiles(id, runDir);
  const argv = [RUNSC, "--root", gvisorDirs(runDir).runscRoot, ...args];
  const [command, ...rest] = existsSync(nsPath) ? [...nsenterPrefix({ nsPath }), ...argv] : argv;
  await run(command!, rest, { timeout: 10_000 });
}

/** gVisor has no OOM killer of its own: the host's memory cgroup kills the whole sandbox, and runsc
 * removes that cgroup (with its oom_kill counter) as it exits. The kernel log keeps the cause,
 * naming the cgroup, so that is where an unexpected SIGKILL is explained. A workspace keeps its id
 * across starts, so only a kill logged since this sandbox started counts (`sinceUptime`, seconds
 * since boot as dmesg stamps them). */
async function killedForMemory(id: string, sinceUptime: number): Promise<boolean> {
  try {
    const { stdout } = await run("dmesg", [], { timeout: 2_000, maxBuffer: 16 * 1024 * 1024 });
    return oomKilledSince(stdout, id, sinceUptime);
  } catch {
    return false;
  }
}

/** Whether the kernel log `text` has a memory-cgroup kill of sandbox `id` at or after `since`. */
export function oomKilledSince(text: string, id: string, since: number): boolean {
  const needle = `oom_memcg=/pyro/${id},`;
  return text.split("\n").some((line) => {
    if (!line.includes(needle)) return false;
    const stamp = /^\[\s*(\d+\.\d+)\]/.exec(line);
    return stamp === null || Number(stamp[1]) >= since;
  });
}

/** Seconds since boot, as the kernel log stamps its lines. */
function uptime(): number {
  try {
    return Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
  } catch {
    return 0;
  }
}

function runscFreezer(id: string, runDir: string): Freezer {
  return {
    // runsc names a sandbox that died (killed from outside, out of memory) as "in state stopped".
    pause: () =>
      runsc(id, runDir, ["pause", id]).catch((err: { stderr?: string; message: string }) => {
        const said = (err.stderr || err.message).trim();
        if (/in state stopped|cannot load container|does not exist/.test(said)) {
          throw new PyroError("SANDBOX_NOT_RUNNING", `the gvisor sandbox is not running (runsc: ${said})`);
        }
        throw err;
      }),
    resume: () => runsc(id, runDir, ["resume", id]),
  };
}

export class GvisorEngine implements Engine {
  readonly name = "gvisor" as const;

  async probe(): Promise<EngineProbe> {
    try {
      const { stdout } = await run(RUNSC, ["--version"], { timeout: 5_000 });
      const version = stdout.split("\n")[0]?.trim() ?? "runsc";
      const denied = privilegeUnavailable();
      if (denied) return { available: false, detail: `${version} found, but ${denied}` };
      return { available: true, detail: isRootless() ? `${version} (rootless)` : version };
    } catch {
      return { available: false, detail: "runsc is not installed (apt-get install runsc)" };
    }
  }

  async start(spec: SandboxSpec): Promise<Sandbox> {
    const dirs = gvisorDirs(spec.runDir);
    await Promise.all(Object.values(dirs).map((d) => mkdir(d, { recursive: true })));
    await mountOverlay(join(spec.environment.rootDir), dirs.upper, dirs.work, dirs.rootfs);
    let network: SandboxNetwork | undefined;
    let child: ChildProcess | undefined;
    try {
      network = await networkFor(spec);
      const oci = buildOciSpec({
        id: spec.id,
        rootPath: dirs.rootfs,
        vcpuCount: spec.vcpuCount,
        memMib: spec.memMib,
        hostNetwork: network !== undefined,
        guestFiles: await gvisorGuestFiles(dirs.bundle, spec.environment.rootDir, spec.network),
      });
      await writeFile(join(dirs.bundle, "config.json"), JSON.stringify(oci));
      const argv = [
        ...(network ? nsenterPrefix(network) : []),
        RUNSC,
        "--root",
        dirs.runscRoot,
        `--network=${network ? "host" : "none"}`,
        ...runscCgroupFlags(),
        "--overlay2=none",
        "--cpu-num-from-quota",
        "run",
        "--bundle",
        dirs.bundle,
        spec.id,
      ];
      spec.log(`gvisor: ${argv.join(" ")}`);
      child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
    } catch (err) {
      await network?.teardown().catch(() => {});
      await unmount(dirs.rootfs);
      throw err;
    }
    return new GvisorSandbox(spec, child, network);
  }

  async runOnce(spec: SandboxSpec, exec: OneShotExec): Promise<AgentExecResult> {
    const dirs = gvisorDirs(spec.runDir);
    const result = await runOnceGvisor(spec, exec, dirs);
    if (result.exit_code === 137 || result.timed_out) {
      // runsc was killed (timeout) or the sandbox was (memory): its state and cgroup stay behind.
      await this.cleanup(spec.id, spec.runDir);
      if (!result.timed_out && (await killedForMemory(spec.id, 0))) {
        const note = `[pyro] the sandbox ran out of memory (mem_mib=${spec.memMib}); raise mem_mib (--mem-mib) and retry\n`;
        exec.onData(2, Buffer.from(note));
      }
    }
    return result;
  }

  /** The environment's /workspace is empty, so the overlay's upper layer holds all of it. */
  workspaceLayer(runDir: string): string {
    return join(gvisorDirs(runDir).upper, "workspace");
  }

  /** The overlay's merged view: an upper layer written behind its mounted overlay's back is undefined. */
  workspaceWritable(runDir: string): string {
    return join(gvisorDirs(runDir).rootfs, "workspace");
  }

  /** The whole upper layer: what the guest changed outside /workspace goes with a reset too. */
  resetDiscards(_runDir: string): string[] {
    return [];
  }

  /** gVisor writes through to the upper layer as each guest syscall returns (tested), so a paused
   * sandbox's layer is exactly its /workspace. */
  async withFrozenWorkspace<T>(
    id: string,
    runDir: string,
    fn: (layer: string) => Promise<T>,
    discard?: string,
  ): Promise<T | undefined> {
    return withFrozen(runDir, runscFreezer(id, runDir), () => fn(this.workspaceLayer(runDir)), discard);
  }

  async thawAbandoned(id: string, runDir: string): Promise<void> {
    await thawAbandoned(runDir, runscFreezer(id, runDir));
  }

  async doctorChecks(_probe: EngineProbe): Promise<DoctorCheck[]> {
    return [
      await hostToolCheck("runsc", "runsc", "gVisor sandboxes"),
      await hostToolCheck("tini-static", "tini", "the sandbox init"),
      await hostToolCheck("nsenter", "util-linux", "running runsc inside a sandbox's network namespace"),
      await hostToolCheck("setpriv", "util-linux", "tying a one-shot sandbox's life to its caller"),
    ];
  }

  leftovers(id: string, runDir: string, host: { mounts: string[]; namespaces: string[] }): string[] {
    return sandboxLeftovers(id, runDir, host);
  }

  async cleanup(id: string, runDir: string): Promise<string[]> {
    const dirs = gvisorDirs(runDir);
    const cleaned: string[] = [];
    try {
      await runsc(id, runDir, ["delete", "--force", id]);
      cleaned.push(`runsc container ${id}`);
    } catch {}
    cleaned.push(...(await cleanupSandboxNetwork(id, runDir)));
    if (await unmount(dirs.rootfs)) cleaned.push(`mount ${dirs.rootfs}`);
    cleaned.push(...(await removeCgroups(id)).map((d) => `cgroup ${d}`));
    return cleaned;
  }
}

class GvisorSandbox implements Sandbox {
  readonly engine = "gvisor" as const;
  readonly channel: Duplex;
  readonly exited: Promise<SandboxExit>;
  private stopping: Promise<void> | undefined;
  /** pyro itself killed the sandbox (a stop it did not obey in time). */
  private killedHere = false;
  /** When this sandbox started, in seconds since boot (the kernel log's clock). */
  private readonly startedAt = uptime() - 1;

  get netnsPath(): string | undefined {
    return this.network?.nsPath;
  }

  constructor(
    private readonly spec: SandboxSpec,
    private readonly child: ChildProcess,
    private readonly network: SandboxNetwork | undefined,
  ) {
    this.exited = new Promise((resolve) => {
      child.once("exit", async (code, signal) => {
        spec.log(`gvisor: runsc exited code=${code} signal=${signal}`);
        // A stop may already be under way here (the agent's channel closes first), so any failed
        // exit is examined whoever asked for the stop: after a memory-cgroup kill runsc exits 137
        // or, when the sandbox process went first, 2.
        let reason: string | undefined;
        if (code !== 0 && !this.killedHere && (await killedForMemory(spec.id, this.startedAt))) {
          reason = `the sandbox ran out of memory (mem_mib=${spec.memMib}); raise mem_mib (--mem-mib) and retry`;
        } else if ((code === 137 || signal === "SIGKILL") && !this.killedHere) {
          reason = "the sandbox was killed from outside";
        } else if (!this.stopping) {
          reason = `the sandbox exited unexpectedly (runsc exit code ${code}); see the supervisor log`;
        }
        if (reason) spec.log(`gvisor: ${reason}`);
        resolve({ code, signal, reason });
      });
      child.once("error", (err) => {
        spec.log(`gvisor: runsc failed to start: ${err.message}`);
        resolve({ code: null, signal: null });
      });
    });
    logStderrLines(child, "sandbox", spec.log);
    this.channel = Duplex.from({ readable: child.stdout!, writable: child.stdin! });
    // A write after the sandbox died must surface as a closed channel, not crash the supervisor.
    child.stdin!.on("error", () => {});
  }

  pids(): number[] {
    return this.child.pid === undefined ? [] : [this.child.pid];
  }

  publishPort(hostPort: number, guestPort: number): Promise<{ id: number; host_port: number }> {
    if (!this.network) throw new PyroError("NETWORK_POLICY_DENIED", "this sandbox has no network to publish from");
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
    const dirs = gvisorDirs(this.spec.runDir);
    // Closing the channel makes the agent exit, which ends the container cleanly.
    this.child.stdin?.end();
    if (!(await settlesWithin(this.exited, 3_000))) {
      this.killedHere = true;
      await runsc(this.spec.id, this.spec.runDir, ["kill", this.spec.id, "KILL"]).catch(() => {});
      if (!(await settlesWithin(this.exited, 2_000))) this.child.kill("SIGKILL");
      await settlesWithin(this.exited, 2_000);
    }
    await runsc(this.spec.id, this.spec.runDir, ["delete", "--force", this.spec.id]).catch(() => {});
    await this.network?.teardown().catch((err: Error) => this.spec.log(`gvisor: network teardown: ${err.message}`));
    for (let attempt = 0; attempt < 5 && (await isMounted(dirs.rootfs)); attempt++) {
      await unmount(dirs.rootfs);
    }
    await removeCgroups(this.spec.id);
    if (await isMounted(dirs.rootfs)) {
      throw new PyroError("INTERNAL", `could not unmount ${dirs.rootfs}; run pyro doctor --repair`);
    }
  }
}
