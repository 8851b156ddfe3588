// Owns the runtime the three faces call: validating requests against the contract, environments,
// launching supervisors for sandboxes, and finding and cleaning what dead supervisors left behind.

import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { StringDecoder } from "node:string_decoder";
import type { z } from "zod";
import { Stream } from "../channel/frame.js";
import { commandToArgv } from "../channel/protocol.js";
import { DEFAULTS } from "../contract/defaults.js";
import { PyroError } from "../contract/errors.js";
import type {
  DoctorResult,
  EngineChoice,
  EngineName,
  EnvironmentInspect,
  EnvironmentList,
  EnvironmentPruneResult,
  EnvironmentPullResult,
  PrepareParams,
  PrepareResult,
  RunRequest,
  RunResult,
} from "../contract/schemas.js";
import { hostSandboxState, hostToolCheck, networkChecks } from "../engines/checks.js";
import { availableEngines, getEngine, probeEngines, selectEngine, shippedEngines } from "../engines/index.js";
import { ENVIRONMENT_BUILD_TIMEOUT_MS, EnvironmentStore, type InstalledEnvironment } from "../environments/index.js";
import { privilegeCheck } from "../rootless/mode.js";
import { liveSupervisor } from "../supervisor/launch.js";
import { SUPERVISOR_CONFIG_FILE, SUPERVISOR_STATE_FILE, type SupervisorStateRecord } from "../supervisor/protocol.js";
import type { SupervisorConfig } from "../supervisor/supervisor.js";
import { type PyroPaths, resolvePaths, sandboxesDir } from "../util/paths.js";
import { currentProcessIdentity, identityAlive, type ProcessIdentity } from "../util/process.js";
import { PYRO_VERSION } from "../version.js";
import { DiskService } from "./disk-service.js";
import { ExecService } from "./exec.js";
import type { OutputListener } from "./exec-runs.js";
import { FileService } from "./files.js";
import { checkFitsHost } from "./host-limits.js";
import { diskLimitUnavailable } from "./layer-disk.js";
import { dailyLoopState, prepare } from "./prepare.js";
import type { ProgressReporter } from "./progress.js";
import type { RecordStore } from "./records.js";
import { ServiceService } from "./services.js";
import { ShellService } from "./shells.js";
import { SnapshotService } from "./snapshot-service.js";
import { TreeService } from "./trees.js";
import { type WorkspaceOperations, workspaceOperations } from "./workspace-api.js";
import { WorkspaceService } from "./workspaces.js";

export type { ProgressReporter } from "./progress.js";

export interface ManagerOptions {
  stateDir?: string;
  cacheDir?: string;
  engine?: EngineChoice;
}

/** Written into a one-shot run's directory: the process that owns the sandbox. */
const OWNER_FILE = "owner.json";
interface OwnerRecord extends ProcessIdentity {
  engine: EngineName;
}

const debugLog = process.env.PYRO_DEBUG ? (line: string) => process.stderr.write(`[debug] ${line}\n`) : () => {};

export class Manager {
  readonly paths: PyroPaths;
  readonly environments: EnvironmentStore;
  /** The workspace operations the faces call (persistent sandboxes), from the job services below. */
  readonly workspaces: WorkspaceOperations;
  /** Workspace lifecycle and what every job shares: records, clients, secrets, boot and halt. */
  readonly lifecycle: WorkspaceService;
  private readonly execs: ExecService;
  /** PTY shells and services in workspaces (workspace-full). */
  readonly shells: ShellService;
  readonly services: ServiceService;
  private readonly records: RecordStore;
  private readonly engineChoice: EngineChoice;

  constructor(opts: ManagerOptions = {}) {
    this.paths = resolvePaths(opts);
    this.environments = new EnvironmentStore(this.paths.cacheDir);
    this.engineChoice = opts.engine ?? DEFAULTS.engine;
    const lifecycle = new WorkspaceService({
      stateDir: this.paths.stateDir,
      environments: this.environments,
      engineChoice: this.engineChoice,
      ensureEnvironment: (name, progress) => this.ensureEnvironment(name, progress),
    });
    this.lifecycle = lifecycle;
    this.execs = new ExecService(lifecycle);
    this.workspaces = workspaceOperations({
      lifecycle,
      exec: this.execs,
      files: new FileService(lifecycle),
      trees: new TreeService(lifecycle),
      snapshots: new SnapshotService(lifecycle),
      disk: new DiskService(lifecycle),
    });
    this.records = lifecycle.records;
    this.shells = new ShellService(lifecycle);
    this.services = new ServiceService(lifecycle);
  }

  /** One command in a throwaway sandbox; `onOutput` hears its output as it arrives (the result still
   * holds all of it, up to the cap). */
  async run(
    params: RunRequest,
    opts: { progress?: ProgressReporter; signal?: AbortSignal; onOutput?: OutputListener } = {},
  ): Promise<RunResult> {
    checkFitsHost(params);
    const progress = opts.progress;
    await this.reapLeftovers();
    const { engine } = await selectEngine(params.engine === "auto" ? this.engineChoice : params.engine);
    const environment = await this.ensureEnvironment(params.environment, progress);
    const id = `run-${randomBytes(5).toString("hex")}`;
    const runDir = join(sandboxesDir(this.paths), id);
    await mkdir(runDir, { recursive: true });
    // The owner record lets any later pyro process tell a live run from a dead one's leftovers.
    const owner: OwnerRecord = { ...(await currentProcessIdentity()), engine: engine.name };
    await writeFile(join(runDir, OWNER_FILE), JSON.stringify(owner));
    progress?.phase("run", `${engine.name} sandbox ${id}`);
    const started = Date.now();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    // A character split across chunks is held back until its last byte arrives.
    const decoders = { stdout: new StringDecoder("utf8"), stderr: new StringDecoder("utf8") };
    const heard = (stream: "stdout" | "stderr", chunk: Buffer) => {
      const text = decoders[stream].write(chunk);
      if (text) opts.onOutput?.(stream, text);
    };
    try {
      const result = await engine.runOnce(
        {
          id,
          runDir,
          environment,
          vcpuCount: params.vcpu_count,
          memMib: params.mem_mib,
          network: params.network ? "egress" : "off",
          log: debugLog,
        },
        {
          argv: commandToArgv(params.command),
          cwd: DEFAULTS.guestWorkspace,
          env: {},
          timeoutMs: params.timeout_seconds * 1000,
          maxOutputBytes: DEFAULTS.outputMaxBytes,
          onData: (stream, chunk) => {
            (stream === Stream.STDERR ? err : out).push(chunk);
            heard(stream === Stream.STDERR ? "stderr" : "stdout", chunk);
          },
          signal: opts.signal,
        },
      );
      return {
        environment: params.environment,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        exit_code: result.exit_code,
        duration_ms: Date.now() - started,
        timed_out: result.timed_out,
        stdout_truncated: result.stdout_truncated,
        stderr_truncated: result.stderr_truncated,
        execution_mode: engine.name,
      };
    } finally {
      await rm(runDir, { recursive: true, force: true });
    }
  }

  /**
   * The installed environment, built first when it is missing. Such a build is bounded by
   * ENVIRONMENT_BUILD_TIMEOUT_MS unless `bounded` is false, and reports each of its phases as
   * "pull: building environment NAME: ..." so that a caller far from the build knows what it waits for.
   * A cancelled call does not stop the build: a client that gave up (an MCP client's timeout) finds
   * it finished, or waits on its lock, when it tries again.
   */
  private async ensureEnvironment(
    name: string,
    progress?: ProgressReporter,
    opts: { bounded?: boolean } = {},
  ): Promise<InstalledEnvironment> {
    try {
      return await this.environments.require(name);
    } catch (err) {
      if (!(err instanceof PyroError) || err.code !== "ENVIRONMENT_NOT_INSTALLED") throw err;
      const bounded = opts.bounded ?? true;
      const limit = bounded ? `, at most ${ENVIRONMENT_BUILD_TIMEOUT_MS / 60_000} min` : "";
      progress?.phase(
        "pull",
        `${name} is not installed yet, so it is built now: a one-time build (usually 1-5 min${limit}) that ` +
          `later calls reuse. To skip this wait next time, run \`pyro env pull ${name}\` ahead of time.`,
      );
      const building: ProgressReporter | undefined = progress && {
        phase: (phase, detail) =>
          progress.phase("pull", `building environment ${name}: ${detail ? `${phase}: ${detail}` : phase}`),
      };
      await this.environments.pull(name, {
        progress: building,
        timeoutMs: bounded ? ENVIRONMENT_BUILD_TIMEOUT_MS : undefined,
      });
      return this.environments.require(name);
    }
  }

  listEnvironments(): Promise<EnvironmentList> {
    return this.environments.list();
  }

  /** Pulls the environment, then lets each engine that can run here build what it boots from it
   * (the qemu engine's kernel, initramfs and root image), recorded in the manifest. */
  async pullEnvironment(
    name: string,
    opts: { progress?: ProgressReporter; force?: boolean } = {},
  ): Promise<EnvironmentPullResult> {
    const pulled = await this.environments.pull(name, opts);
    const installed = await this.environments.require(name);
    for (const engine of await availableEngines()) {
      if (!engine.prepareEnvironment) continue;
      opts.progress?.phase(`prepare-${engine.name}`, `building what the ${engine.name} engine boots from ${name}`);
      await this.environments.recordEngineArtifacts(name, engine.name, await engine.prepareEnvironment(installed));
    }
    return { ...pulled, ...(await this.environments.inspect(name)) };
  }

  inspectEnvironment(name: string): Promise<EnvironmentInspect> {
    return this.environments.inspect(name);
  }

  /** Removes environments nothing should use, then what each engine cached that no installed
   * environment or existing sandbox uses (the qemu engine's old images and saved VMs). */
  async pruneEnvironments(): Promise<EnvironmentPruneResult> {
    const result = await this.environments.prune();
    const environments = await this.environments.installed();
    const oneShots = sandboxesDir(this.paths);
    const sandboxDirs = [
      ...(await this.lifecycle.records.all()).map((r) => this.lifecycle.records.paths(r.workspace_id).sandbox),
      ...(await readdir(oneShots).catch(() => [] as string[])).map((d) => join(oneShots, d)),
    ];
    for (const engine of await availableEngines()) {
      if (!engine.pruneCache) continue;
      const pruned = await engine.pruneCache(environments, sandboxDirs);
      result.removed.push(...pruned.removed);
      result.freed_bytes += pruned.freed_bytes;
    }
    return result;
  }

  /**
   * Finds sandboxes whose supervisor is gone and releases what they left (runsc containers, mounts,
   * network namespaces, cgroups). One-shot run directories are removed; they hold nothing to keep.
   */
  /** `pyro prepare`: one create, exec, reset and delete in `environment`, recorded as warm. */
  async prepare(
    { environment }: z.output<typeof PrepareParams>,
    opts: { progress?: ProgressReporter } = {},
  ): Promise<PrepareResult> {
    // prepare is the advice for a build that ran out of time, so its own build has no bound.
    await this.ensureEnvironment(environment, opts.progress, { bounded: false });
    return prepare(
      {
        stateDir: this.paths.stateDir,
        workspaces: this.workspaces,
        inspect: (name) => this.environments.inspect(name),
      },
      environment,
      opts.progress,
    );
  }

  /** Stops workspaces idle past their TTL (see WorkspaceService.reapExpired). */
  reapExpired(): Promise<string[]> {
    return this.lifecycle.reapExpired();
  }

  async reapLeftovers(opts: { workspaces?: boolean } = {}): Promise<string[]> {
    const cleaned: string[] = [];
    for (const { id, runDir, oneShot } of await this.sandboxDirs(opts.workspaces ?? false)) {
      const engineName = await this.engineOf(runDir);
      if (await this.sandboxOwned(runDir)) {
        // A live sandbox left paused by a process that died mid-freeze is thawed.
        if (!oneShot)
          await getEngine(engineName)
            .thawAbandoned(id, runDir)
            .catch(() => {});
        continue;
      }
      try {
        cleaned.push(...(await getEngine(engineName).cleanup(id, runDir)));
      } catch (err) {
        cleaned.push(`could not clean ${id}: ${(err as Error).message}`);
        continue;
      }
      // A persistent sandbox's directory holds its disk: only one-shot directories are removed.
      const config = await readJson<SupervisorConfig>(join(runDir, SUPERVISOR_CONFIG_FILE));
      if (oneShot && (!config || config.ephemeral)) {
        await rm(runDir, { recursive: true, force: true });
        cleaned.push(`run directory ${runDir}`);
      }
    }
    if (opts.workspaces) {
      cleaned.push(...(await this.lifecycle.sweepTrash()).map((dir) => `half-deleted workspace ${dir}`));
      for (const { workspace_id } of await this.lifecycle.records.damaged()) {
        if (await this.lifecycle.stopDamaged(workspace_id))
          cleaned.push(`sandbox of damaged workspace ${workspace_id}`);
      }
    }
    return cleaned;
  }

  /** One-shot sandbox directories, and (when asked) the sandbox directory of every workspace. */
  private async sandboxDirs(workspaces: boolean): Promise<Array<{ id: string; runDir: string; oneShot: boolean }>> {
    const dirs: Array<{ id: string; runDir: string; oneShot: boolean }> = [];
    const root = sandboxesDir(this.paths);
    for (const id of await readdir(root).catch(() => [] as string[])) {
      dirs.push({ id, runDir: join(root, id), oneShot: true });
    }
    if (workspaces) {
      for (const record of await this.records.all()) {
        const runDir = this.records.paths(record.workspace_id).sandbox;
        if (await stat(runDir).catch(() => undefined)) dirs.push({ id: record.workspace_id, runDir, oneShot: false });
      }
    }
    return dirs;
  }

  async doctor(opts: { repair?: boolean; environment?: string } = {}): Promise<DoctorResult> {
    const engines = await probeEngines();
    let selected: EngineName | null = null;
    let reason: string;
    try {
      const choice = await selectEngine(this.engineChoice);
      selected = choice.engine.name;
      reason = choice.reason;
    } catch (err) {
      reason = (err as Error).message;
    }
    // What pyro itself needs, what each engine it ships needs, and the sandbox network they share.
    const checks: DoctorResult["checks"] = [
      await hostToolCheck("mmdebstrap", "mmdebstrap", "building environments"),
      { name: "privileges", ...privilegeCheck() },
    ];
    for (const engine of shippedEngines()) {
      const probe = engines.find((e) => e.name === engine.name) ?? (await engine.probe());
      checks.push(...(await engine.doctorChecks(probe)));
    }
    checks.push(...(await networkChecks()));
    // Not a failure: a workspace still works without a disk limit; the line says what holds.
    const noDiskLimit = await diskLimitUnavailable();
    checks.push({
      name: "workspace disks",
      ok: true,
      detail: noDiskLimit
        ? `no disk limit: ${noDiskLimit}; a guest can fill the host's disk`
        : "each workspace's disk is a loop-mounted ext4 image of its disk_mib",
    });
    let dailyLoop: DoctorResult["daily_loop"];
    if (opts.environment) {
      const env = await this.environments.inspect(opts.environment);
      dailyLoop = await dailyLoopState(this.paths.stateDir, env);
      checks.push({
        name: `environment ${env.name}`,
        ok: env.installed && env.agent_current,
        detail: env.installed
          ? env.agent_current
            ? "installed, agent current"
            : "installed, agent stale"
          : "not installed",
        ...(env.installed && env.agent_current ? {} : { fix: `pyro env pull ${env.name}` }),
      });
    }
    const items = await this.findLeftovers();
    let repaired = 0;
    if (opts.repair && items.length > 0) {
      const cleaned = await this.reapLeftovers({ workspaces: true });
      repaired = cleaned.length;
    }
    const remaining = opts.repair ? await this.findLeftovers() : items;
    const environments = (await this.environments.list()).environments.map((e) => ({
      name: e.name,
      installed: e.installed,
    }));
    return {
      ok: selected !== null && checks.every((c) => c.ok),
      ...(dailyLoop ? { daily_loop: dailyLoop } : {}),
      environments,
      platform: `${process.platform}-${process.arch}`,
      pyro_version: PYRO_VERSION,
      engine: { selected, reason, engines },
      state_dir: this.paths.stateDir,
      cache_dir: this.paths.cacheDir,
      checks,
      leftovers: { found: items.length, repaired, items: opts.repair ? remaining : items },
    };
  }

  /** Leftovers of dead supervisors: sandbox dirs without a live owner, stray mounts and netns. */
  private async findLeftovers(): Promise<string[]> {
    const found: string[] = [];
    const dead: Array<{ id: string; runDir: string }> = [];
    for (const dir of await this.sandboxDirs(true)) {
      if (await this.sandboxOwned(dir.runDir)) continue;
      if (dir.oneShot) found.push(`sandbox ${dir.id} has no live owner`);
      dead.push(dir);
    }
    for (const { workspace_id, problem } of await this.lifecycle.records.damaged()) {
      const running = (await liveSupervisor(this.lifecycle.records.paths(workspace_id).sandbox)) !== undefined;
      found.push(
        `workspace ${workspace_id}: ${problem}; ${running ? "its sandbox still runs and --repair stops it; " : ""}` +
          `its files are kept: pyro workspace delete ${workspace_id} removes it`,
      );
    }
    const host = await hostSandboxState();
    for (const { id, runDir } of dead)
      found.push(...getEngine(await this.engineOf(runDir)).leftovers(id, runDir, host));
    return found;
  }

  /** The engine a sandbox directory belongs to, from its owner or supervisor record. */
  private async engineOf(runDir: string): Promise<EngineName> {
    const owner = await readJson<OwnerRecord>(join(runDir, OWNER_FILE));
    const config = await readJson<SupervisorConfig>(join(runDir, SUPERVISOR_CONFIG_FILE));
    return owner?.engine ?? config?.engine ?? "gvisor";
  }

  /** A sandbox directory is in use while its one-shot owner or its supervisor lives, or while a
   * supervisor is still being launched into it. */
  private async sandboxOwned(runDir: string): Promise<boolean> {
    const owner = await readJson<OwnerRecord>(join(runDir, OWNER_FILE));
    if (owner) return identityAlive(owner);
    if (await readJson<SupervisorStateRecord>(join(runDir, SUPERVISOR_STATE_FILE))) {
      return (await liveSupervisor(runDir)) !== undefined;
    }
    // Just created, record not written yet.
    return Date.now() - (await mtimeMs(runDir).catch(() => 0)) < 10_000;
  }

  async close(): Promise<void> {
    await this.execs.close();
    await this.lifecycle.close();
  }
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}

async function mtimeMs(path: string): Promise<number> {
  return (await stat(path)).mtimeMs;
}
