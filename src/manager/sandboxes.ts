// Owns each workspace's sandbox as the host drives it: booting it under its own detached
// supervisor (on its disk, mounted and whole: layer-disk.ts), halting it, the cached client to its
// supervisor, freezing it for a consistent read of its layer, and the error that says it is not
// running and why. Also the host-side copy of a layer (cp -a) that baselines and resets use.
import { execFile } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { DEFAULTS } from "../contract/defaults.js";
import { PyroError } from "../contract/errors.js";
import { getEngine } from "../engines/index.js";
import type { Engine } from "../engines/types.js";
import type { InstalledEnvironment } from "../environments/index.js";
import { SupervisorClient } from "../supervisor/client.js";
import { launchSupervisor, liveSupervisor } from "../supervisor/launch.js";
import { SANDBOX_EXIT_FILE } from "../supervisor/protocol.js";
import { ensureDisk } from "./layer-disk.js";
import type { RecordStore, WorkspaceRecord } from "./records.js";
import { boundCredentials } from "./workspace-secrets.js";

const run = promisify(execFile);

export class WorkspaceSandboxes {
  private readonly clients = new Map<string, SupervisorClient>();

  constructor(private readonly records: RecordStore) {}

  /** Starts the workspace's supervisor on its (possibly existing) writable layer. */
  async boot(record: WorkspaceRecord, environment: InstalledEnvironment): Promise<void> {
    const paths = this.records.paths(record.workspace_id);
    const sandbox = paths.sandbox;
    const credentials = boundCredentials(record, paths);
    // A dead supervisor's leftovers (mount, runsc state, netns) must go before a new one starts;
    // the disk is mounted (after a reboot) and a reset cut off mid-swap is finished or dropped.
    await getEngine(record.engine).cleanup(record.workspace_id, sandbox);
    await ensureDisk(sandbox, record.disk_mib ?? null);
    await launchSupervisor({
      id: record.workspace_id,
      runDir: sandbox,
      engine: record.engine,
      environment,
      vcpuCount: record.vcpu_count,
      memMib: record.mem_mib,
      network: record.network_policy,
      trustFiles: [...(record.trusted_ca ? [paths.trustedCa] : []), ...(credentials ? [paths.egressCaCert] : [])],
      ...(record.network_policy === "allowlist"
        ? {
            egress: {
              rules: record.network_rules ?? { allow: [], deny: [] },
              logPath: paths.networkLog,
              ...(credentials ? { credentials } : {}),
              ...(record.host_proxy ? { proxyFile: paths.hostProxy } : {}),
            },
          }
        : {}),
      ephemeral: false,
      readyTimeoutMs: DEFAULTS.sandboxReadySeconds * 1000,
    });
  }

  /** Stops the sandbox (if running) and releases its runtime resources; the disk stays. */
  async halt(record: WorkspaceRecord): Promise<void> {
    const sandbox = this.records.paths(record.workspace_id).sandbox;
    const cached = this.clients.get(record.workspace_id);
    this.clients.delete(record.workspace_id);
    cached?.close();
    const live = await liveSupervisor(sandbox);
    if (live) {
      const client = await SupervisorClient.connect(live.socket).catch(() => undefined);
      if (client) await client.shutdown();
      else process.kill(live.pid, "SIGTERM");
      // The supervisor closes its socket before it exits: until it is gone it still reads as live,
      // and a start right after this stop would take the dying sandbox for a running one.
      await supervisorGone(sandbox, live.pid);
    }
    await getEngine(record.engine).cleanup(record.workspace_id, sandbox);
  }

  async client(record: WorkspaceRecord): Promise<SupervisorClient> {
    // A sandbox some dead process left frozen answers nothing until thawed (one stat otherwise).
    await getEngine(record.engine).thawAbandoned(record.workspace_id, this.records.paths(record.workspace_id).sandbox);
    const cached = this.clients.get(record.workspace_id);
    if (cached?.isOpen) return cached;
    const live = await liveSupervisor(this.records.paths(record.workspace_id).sandbox);
    if (live?.state !== "ready") throw await this.notRunning(record);
    const client = await SupervisorClient.connect(live.socket);
    this.clients.set(record.workspace_id, client);
    return client;
  }

  /** The engine's withFrozenWorkspace; a sandbox found dead on the way is a workspace not running. */
  async withFrozen<T>(record: WorkspaceRecord, fn: (layer: string) => Promise<T>): Promise<T | undefined> {
    return this.frozen(record, (engine, runDir) => engine.withFrozenWorkspace(record.workspace_id, runDir, fn));
  }

  /** The same, for adding to /workspace: fn gets where the host may write (the engine's
   * workspaceWritable) and makes `name` there, which is removed if this process dies inside fn. */
  async withFrozenWritable<T>(
    record: WorkspaceRecord,
    name: string,
    fn: (dir: string) => Promise<T>,
  ): Promise<T | undefined> {
    return this.frozen(record, (engine, runDir) => {
      const dir = engine.workspaceWritable(runDir);
      return engine.withFrozenWorkspace(record.workspace_id, runDir, () => fn(dir), join(dir, name));
    });
  }

  private async frozen<T>(
    record: WorkspaceRecord,
    freeze: (engine: Engine, runDir: string) => Promise<T | undefined>,
  ): Promise<T | undefined> {
    try {
      return await freeze(getEngine(record.engine), this.records.paths(record.workspace_id).sandbox);
    } catch (err) {
      if (err instanceof PyroError && err.code === "SANDBOX_NOT_RUNNING") throw await this.notRunning(record);
      throw err;
    }
  }

  /** The error for a workspace whose sandbox is not running: why, when the sandbox ended by itself
   * (killed from outside, out of memory, crashed), and how to get it back. /workspace is kept. */
  async notRunning(record: WorkspaceRecord): Promise<PyroError> {
    const why = await readFile(join(this.records.paths(record.workspace_id).sandbox, SANDBOX_EXIT_FILE), "utf8").then(
      (text) => `: ${text.trim()}`,
      () => "",
    );
    return new PyroError(
      "WORKSPACE_NOT_RUNNING",
      `workspace ${record.name ?? record.workspace_id} is not running${why}; start it with pyro workspace start ${record.workspace_id} (workspace_start): its files are kept`,
    );
  }

  /** Closes every cached client (the process is closing): a command outlives no process. */
  closeClients(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}

/** Waits for the supervisor `pid` of `sandbox` to exit; after 15 s it is killed. */
export async function supervisorGone(sandbox: string, pid: number): Promise<void> {
  const alive = async () => (await liveSupervisor(sandbox))?.pid === pid;
  for (const t0 = Date.now(); Date.now() - t0 < 15_000; ) {
    if (!(await alive())) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  try {
    process.kill(pid, "SIGKILL");
  } catch {}
  for (const t0 = Date.now(); Date.now() - t0 < 5_000 && (await alive()); ) {
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** cp -a: modes, symlinks (not followed), empty directories and timestamps, at host speed. */
export async function copyTree(from: string, to: string): Promise<void> {
  await rm(to, { recursive: true, force: true });
  try {
    await run("cp", ["-a", "--no-target-directory", from, to]);
  } catch (err) {
    throw new PyroError("INTERNAL", `copying ${from} to ${to} failed: ${(err as { stderr?: string }).stderr ?? err}`);
  }
}
