// Owns a workspace's life and what every job on it shares: create (seeded from a directory or
// archive, with the immutable baseline diff and reset work against), status, update, logs, stop,
// start, delete and TTL, and opening a workspace for one operation (its record, with the sandbox's
// client, the redactor and the activity clock: open-workspace.ts). The sandbox itself is driven by
// sandboxes.ts, seeds are read by sources.ts; the jobs (exec, files, trees, snapshots, disk) are
// classes of their own over this one; see docs/architecture.md.

import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { z } from "zod";
import { type AgentServiceInfo, ServiceOp } from "../channel/protocol.js";
import { GUEST_TASK_LIMIT } from "../contract/defaults.js";
import { PyroError } from "../contract/errors.js";
import type { EngineChoice } from "../contract/schemas.js";
import {
  CommandLogEntry,
  type PolicyCheckParams,
  type PolicyCheckResult,
  type WorkspaceCreateParams,
  type WorkspaceInfo,
  type WorkspaceListResult,
  type WorkspaceLogsParams,
  type WorkspaceLogsResult,
  type WorkspaceRefParams,
  type WorkspaceUpdateParams,
} from "../contract/workspace.js";
import { createEgressCa } from "../egress/credentials.js";
import { hostProxyAtCreate, maskedHostProxy } from "../egress/host-proxy.js";
import { readNetworkLog } from "../egress/log.js";
import { getEngine, selectEngine } from "../engines/index.js";
import type { EnvironmentStore, InstalledEnvironment } from "../environments/index.js";
import { liveSupervisor } from "../supervisor/launch.js";
import { SANDBOX_EXIT_FILE } from "../supervisor/protocol.js";
import { extractArchive } from "../util/archive.js";
import { faultPoint } from "../util/fault.js";
import { processAlive } from "../util/process.js";
import { checkDiskFitsHost, checkFitsHost } from "./host-limits.js";
import { createDisk, diskLimitUnavailable, diskUsedMib, ensureDisk, releaseDisk } from "./layer-disk.js";
import { boundSecrets, checkPolicy, rulesAfterUpdate, rulesAtCreate } from "./network-rules.js";
import { OpenWorkspace } from "./open-workspace.js";
import type { ProgressReporter } from "./progress.js";
import { LAYOUT_VERSION, RecordStore, type WorkspaceRecord } from "./records.js";
import { copyTree, supervisorGone, WorkspaceSandboxes } from "./sandboxes.js";
import { classifySource, copySeed, sourceStream } from "./sources.js";
import { writeBaselineManifest } from "./tree-index.js";
import { loadTrust } from "./trust.js";
import { loadSecrets, WorkspaceSecrets } from "./workspace-secrets.js";

export interface WorkspaceDeps {
  stateDir: string;
  environments: EnvironmentStore;
  engineChoice: EngineChoice;
  ensureEnvironment: (name: string, progress?: ProgressReporter) => Promise<InstalledEnvironment>;
}

export class WorkspaceService {
  readonly records: RecordStore;
  /** Each workspace's sandbox: boot, halt, the client to its supervisor. */
  readonly sandboxes: WorkspaceSandboxes;
  /** Secret values, the redactor made of them, and the host proxy settings of each workspace. */
  readonly secrets: WorkspaceSecrets;

  constructor(readonly deps: WorkspaceDeps) {
    this.records = new RecordStore(deps.stateDir);
    this.secrets = new WorkspaceSecrets(this.records);
    this.sandboxes = new WorkspaceSandboxes(this.records);
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  /** Progress names the phases (pull when the environment is not built yet, seed, boot). */
  /** `seedOrigin` names what a generated seed came from (a project checkout), for the record. */
  async create(
    params: z.output<typeof WorkspaceCreateParams>,
    opts: { progress?: ProgressReporter; seedOrigin?: string } = {},
  ): Promise<WorkspaceInfo> {
    const progress = opts.progress;
    checkFitsHost(params);
    // Refused when the host's file system is smaller; dropped (null) where the host cannot limit it.
    await checkDiskFitsHost(params.disk_mib, this.deps.stateDir);
    const diskMib = (await diskLimitUnavailable()) ? null : params.disk_mib;
    const rules = rulesAtCreate(params.network_policy, params);
    const bound = new Map(boundSecrets(params.network_policy, rules, params.secrets).map((b) => [b.name, b.hosts]));
    const trust = await loadTrust(params);
    const hostProxy = params.host_proxy ? hostProxyAtCreate(params.network_policy) : undefined;
    const seed = params.seed_path ? await classifySource(params.seed_path, "seed_path") : undefined;
    const secretValues = await loadSecrets(params.secrets);
    const { engine } = await selectEngine(params.engine === "auto" ? this.deps.engineChoice : params.engine);
    const environment = await this.deps.ensureEnvironment(params.environment, progress);
    const id = this.records.newId();
    const now = new Date().toISOString();
    const record: WorkspaceRecord = {
      layout_version: LAYOUT_VERSION,
      workspace_id: id,
      name: params.name ?? null,
      labels: params.labels,
      environment: params.environment,
      engine: engine.name,
      vcpu_count: params.vcpu_count,
      mem_mib: params.mem_mib,
      disk_mib: diskMib,
      ttl_seconds: params.ttl_seconds,
      network_policy: params.network_policy,
      ...(rules ? { network_rules: rules } : {}),
      ...(trust ? { trusted_ca: { certificates: trust.certificates, sources: trust.sources } } : {}),
      ...(hostProxy ? { host_proxy: maskedHostProxy(hostProxy) } : {}),
      secrets: params.secrets.map((s) => ({
        name: s.name,
        source_kind: s.value === undefined ? "file" : "literal",
        // A bound secret's stand-in: random, so it says nothing of the value.
        ...(bound.has(s.name)
          ? { hosts: bound.get(s.name)!, placeholder: `pyro-placeholder-${s.name}-${randomBytes(16).toString("hex")}` }
          : {}),
      })),
      workspace_seed: { mode: seed?.kind ?? "empty", seed_path: opts.seedOrigin ?? seed?.path ?? null },
      created_at: now,
      last_activity_at: now,
      desired_state: "running",
      command_count: 0,
      reset_count: 0,
      exports: [],
      // Until create finishes, a crash leaves a workspace that reads as failed and can be deleted.
      incomplete: true,
    };
    const names = await this.records.namesLock();
    try {
      if (record.name) await this.records.assertNameFree(record.name);
      await this.records.write(record);
    } finally {
      await names.release();
    }
    try {
      faultPoint("create:recorded");
      if (secretValues.size > 0) await this.secrets.save(id, secretValues);
      if (trust) await writeFile(this.records.paths(id).trustedCa, trust.pem, { mode: 0o644 });
      if (hostProxy) await writeFile(this.records.paths(id).hostProxy, JSON.stringify(hostProxy), { mode: 0o600 });
      if (bound.size > 0) {
        const paths = this.records.paths(id);
        await createEgressCa([...new Set([...bound.values()].flat())], paths.egressCaCert, paths.egressCaKey, id);
      }
      // The sandbox is not running yet: seed its writable layer and take the baseline on the host,
      // where a file costs a syscall instead of a trip through the sandbox's kernel.
      const sandbox = this.records.paths(id).sandbox;
      await createDisk(sandbox, diskMib);
      const layer = getEngine(record.engine).workspaceLayer(sandbox);
      await mkdir(layer, { recursive: true, mode: 0o755 });
      if (seed) {
        progress?.phase("seed", seed.path);
        const skipped: string[] = [];
        const pushed =
          seed.kind === "directory"
            ? await copySeed(seed, layer, skipped, "seed_path")
            : await extractArchive(sourceStream(seed, skipped, "seed_path"), layer);
        record.workspace_seed.entry_count = pushed.entry_count;
        if (skipped.length) record.workspace_seed.skipped = skipped;
      }
      faultPoint("create:seeded");
      await this.captureBaseline(record, layer);
      // From here the workspace is whole: a crash while booting leaves it stopped, and start works.
      record.incomplete = false;
      await this.records.write(record);
      faultPoint("create:baselined");
      progress?.phase("boot", `${record.engine} sandbox ${id}`);
      await this.sandboxes.boot(record, environment);
      // Idle time starts when the workspace is ready: a seed of a million files takes minutes, and
      // the TTL reaper stopped such a workspace before its first command.
      record.last_activity_at = new Date().toISOString();
      await this.records.write(record);
      return this.info(record);
    } catch (err) {
      await this.destroy(record.workspace_id).catch(() => {});
      throw err;
    }
  }

  async list(): Promise<WorkspaceListResult> {
    const { records, damaged } = await this.records.scan();
    records.sort((a, b) => b.last_activity_at.localeCompare(a.last_activity_at));
    const workspaces = await Promise.all(records.map((r) => this.info(r)));
    return { count: workspaces.length, workspaces, ...(damaged.length > 0 ? { damaged } : {}) };
  }

  async status({ workspace }: z.output<typeof WorkspaceRefParams>): Promise<WorkspaceInfo> {
    return this.info(await this.records.resolve(workspace));
  }

  async update(params: z.output<typeof WorkspaceUpdateParams>): Promise<WorkspaceInfo> {
    const current = await this.records.resolve(params.workspace);
    const rules = rulesAfterUpdate(current.workspace_id, current.network_policy, current.network_rules, params);
    const apply = (r: WorkspaceRecord): WorkspaceRecord => {
      const labels = { ...r.labels, ...params.labels };
      for (const key of params.clear_labels) delete labels[key];
      return {
        ...r,
        name: params.name ?? r.name,
        labels,
        ...(rules ? { network_rules: rules } : {}),
        last_activity_at: new Date().toISOString(),
      };
    };
    // A running gateway takes the rules first: a record that says more than is enforced would lie.
    if (rules && (await liveSupervisor(this.records.paths(current.workspace_id).sandbox))?.state === "ready") {
      await (await this.sandboxes.client(current)).setEgressRules(rules);
    }
    if (params.name === undefined || params.name === current.name) {
      return this.info(await this.records.mutate(current.workspace_id, apply));
    }
    const names = await this.records.namesLock();
    try {
      await this.records.assertNameFree(params.name, current.workspace_id);
      return this.info(await this.records.mutate(current.workspace_id, apply));
    } finally {
      await names.release();
    }
  }

  /** What the allowlist would decide for a URL, from the recorded rules (no request is made). */
  async policyCheck(params: z.output<typeof PolicyCheckParams>): Promise<PolicyCheckResult> {
    const record = await this.records.resolve(params.workspace);
    return checkPolicy(record.workspace_id, record.network_policy, record.network_rules, params.url);
  }

  async logs(params: z.output<typeof WorkspaceLogsParams>): Promise<WorkspaceLogsResult> {
    const record = await this.records.resolve(params.workspace);
    if (params.network) {
      if (record.network_policy !== "allowlist") {
        throw new PyroError(
          "NETWORK_POLICY_DENIED",
          `workspace ${record.workspace_id} has network policy ${record.network_policy}; only allowlist keeps a network log`,
        );
      }
      const network = await readNetworkLog(this.records.paths(record.workspace_id).networkLog, params.limit);
      return { workspace_id: record.workspace_id, count: network.length, commands: [], network };
    }
    // Entries are written as commands end, so concurrent ones may be out of order; older lines lack
    // newer fields, which parsing fills with their defaults.
    const commands = (await this.records.commands(record.workspace_id))
      .map((entry) => CommandLogEntry.parse(entry))
      .sort((a, b) => a.sequence - b.sequence);
    return { workspace_id: record.workspace_id, count: commands.length, commands };
  }

  /** Deleting what is already gone succeeds: delete is idempotent. */
  async delete({
    workspace,
  }: z.output<typeof WorkspaceRefParams>): Promise<{ workspace_id: string; deleted: boolean }> {
    let record: WorkspaceRecord;
    try {
      record = await this.records.resolve(workspace);
    } catch (err) {
      if (!(err instanceof PyroError && err.code === "WORKSPACE_NOT_FOUND")) throw err;
      // A workspace whose record cannot be read is deleted by its id: its sandbox is stopped first.
      if (!(await this.records.damaged()).some((d) => d.workspace_id === workspace)) {
        return { workspace_id: workspace, deleted: false };
      }
      await this.stopDamaged(workspace);
      await this.destroy(workspace);
      return { workspace_id: workspace, deleted: true };
    }
    await this.destroy(record.workspace_id);
    return { workspace_id: record.workspace_id, deleted: true };
  }

  /** Stops the sandbox of a workspace whose record cannot be read (its supervisor tears it down on
   * SIGTERM); returns whether one was running. */
  async stopDamaged(id: string): Promise<boolean> {
    const runDir = this.records.paths(id).sandbox;
    const live = await liveSupervisor(runDir);
    if (!live) return false;
    process.kill(live.pid, "SIGTERM");
    for (let waited = 0; waited < 15_000 && (await liveSupervisor(runDir)); waited += 100) {
      await new Promise((r) => setTimeout(r, 100));
    }
    return true;
  }

  async stop({ workspace }: z.output<typeof WorkspaceRefParams>): Promise<WorkspaceInfo> {
    const record = await this.records.resolve(workspace);
    await this.sandboxes.halt(record);
    faultPoint("stop:halted");
    return this.info(await this.records.mutate(record.workspace_id, (r) => ({ ...r, desired_state: "stopped" })));
  }

  async start({ workspace }: z.output<typeof WorkspaceRefParams>): Promise<WorkspaceInfo> {
    const record = await this.records.resolve(workspace);
    this.assertComplete(record);
    // Activity first, so no TTL reaper in another process takes the new sandbox for an idle one.
    const updated = await this.records.mutate(record.workspace_id, (r) => ({
      ...r,
      desired_state: "running",
      expired_at: null,
      last_activity_at: new Date().toISOString(),
    }));
    const sandbox = this.records.paths(record.workspace_id).sandbox;
    let live = await liveSupervisor(sandbox);
    if (live?.state === "stopped") {
      // A supervisor whose sandbox ended writes `stopped` just before it exits, and reads as live
      // until it has: a start in that moment waits for it, then boots (qemu conformance, once).
      await supervisorGone(sandbox, live.pid);
      live = undefined;
    }
    if (!live) await this.sandboxes.boot(record, await this.deps.ensureEnvironment(record.environment));
    return this.info(updated);
  }

  // ---- TTL ----------------------------------------------------------------------------------------

  /** Stops running workspaces idle for longer than their ttl_seconds (their disk stays until
   * delete). Any pyro command and a running MCP server call this; returns the ids it stopped. */
  async reapExpired(now = Date.now()): Promise<string[]> {
    await this.sweepTrash();
    const stopped: string[] = [];
    for (const record of await this.records.all()) {
      if (record.ttl_seconds <= 0 || record.desired_state !== "running") continue;
      if (Date.parse(record.last_activity_at) + record.ttl_seconds * 1000 > now) continue;
      if (!(await liveSupervisor(this.records.paths(record.workspace_id).sandbox))) continue;
      try {
        await this.sandboxes.halt(record);
        await this.records.mutate(record.workspace_id, (r) => ({
          ...r,
          desired_state: "stopped",
          expired_at: new Date(now).toISOString(),
        }));
        stopped.push(record.workspace_id);
      } catch {
        // Deleted meanwhile, or another process is stopping it: the next reaper pass will see.
      }
    }
    return stopped;
  }

  async close(): Promise<void> {
    this.sandboxes.closeClients();
  }

  // ---- internals --------------------------------------------------------------------------------

  async info(record: WorkspaceRecord): Promise<WorkspaceInfo> {
    const sandboxDir = this.records.paths(record.workspace_id).sandbox;
    const live = await liveSupervisor(sandboxDir);
    // The supervisor writes why its sandbox ended by itself; a stop, start or reset clears it.
    const stoppedReason =
      live?.state === "ready"
        ? null
        : await readFile(join(sandboxDir, SANDBOX_EXIT_FILE), "utf8").then(
            (text) => text.trim() || null,
            () => null,
          );
    const services = live?.state === "ready" ? await this.serviceStates(record) : [];
    const expires =
      record.ttl_seconds > 0
        ? new Date(Date.parse(record.last_activity_at) + record.ttl_seconds * 1000).toISOString()
        : null;
    return {
      workspace_id: record.workspace_id,
      name: record.name,
      labels: record.labels,
      environment: record.environment,
      engine: record.engine,
      state:
        live?.state === "ready"
          ? "running"
          : live?.state === "failed"
            ? "failed"
            : record.incomplete
              ? "failed"
              : record.expired_at
                ? "expired"
                : "stopped",
      stopped_reason: stoppedReason,
      vcpu_count: record.vcpu_count,
      mem_mib: record.mem_mib,
      disk_mib: record.disk_mib ?? null,
      disk_used_mib: await diskUsedMib(sandboxDir, record.disk_mib ?? null).catch(() => null),
      process_limit: GUEST_TASK_LIMIT,
      ttl_seconds: record.ttl_seconds,
      network_policy: record.network_policy,
      network_rules: record.network_policy === "allowlist" ? (record.network_rules ?? { allow: [], deny: [] }) : null,
      workspace_seed: record.workspace_seed,
      trusted_ca: record.trusted_ca ?? null,
      host_proxy: record.host_proxy ?? null,
      secrets: record.secrets ?? [],
      created_at: record.created_at,
      last_activity_at: record.last_activity_at,
      expires_at: expires,
      command_count: record.command_count,
      reset_count: record.reset_count,
      service_count: services.length,
      running_service_count: services.filter((s) => ["starting", "running", "ready"].includes(s.state)).length,
    };
  }

  /** The services of a running workspace (none when it is stopped or does not answer quickly). */
  private async serviceStates(record: WorkspaceRecord): Promise<AgentServiceInfo[]> {
    try {
      const client = await this.sandboxes.client(record);
      const reply = await client.call(ServiceOp.LIST, {}, { deadlineMs: 5_000 });
      return reply.services;
    } catch {
      return [];
    }
  }

  /** The workspace `ref` names (id or name), held for one operation. */
  async open(ref: string): Promise<OpenWorkspace> {
    const record = await this.records.resolve(ref);
    // Its files are on its disk: mounted again after a host reboot, before anything reads them.
    if (!record.incomplete) await ensureDisk(this.records.paths(record.workspace_id).sandbox, record.disk_mib ?? null);
    return new OpenWorkspace(this, record);
  }

  async touch(id: string): Promise<void> {
    await this.records.mutate(id, (r) => ({ ...r, last_activity_at: new Date().toISOString() }));
  }

  /** Halts, then moves the directory out of sight in one rename before removing it, so a crash
   * mid-delete leaves either the whole workspace or an unlisted trash directory (swept later). */
  private async destroy(id: string): Promise<void> {
    const record = await this.records.read(id);
    if (record) await this.sandboxes.halt(record);
    await releaseDisk(this.records.paths(id).sandbox);
    faultPoint("delete:halted");
    const trash = join(this.records.root, `.trash-${id}-${process.pid}`);
    await rename(this.records.paths(id).dir, trash).catch(() => {});
    faultPoint("delete:moved");
    await rm(trash, { recursive: true, force: true });
  }

  /** Removes trash of deletes whose process died before finishing. */
  async sweepTrash(): Promise<string[]> {
    const swept: string[] = [];
    for (const name of await readdir(this.records.root).catch(() => [] as string[])) {
      const owner = /^\.trash-.+-(\d+)$/.exec(name);
      if (!owner || processAlive(Number(owner[1]))) continue;
      await rm(join(this.records.root, name), { recursive: true, force: true });
      swept.push(join(this.records.root, name));
    }
    return swept;
  }

  assertComplete(record: WorkspaceRecord): void {
    if (record.incomplete) {
      throw new PyroError(
        "WORKSPACE_NOT_RUNNING",
        `workspace ${record.workspace_id} was not fully created (its creating process died); delete it with pyro workspace delete ${record.workspace_id} and create it again`,
      );
    }
  }

  /** The immutable baseline: a host copy of /workspace at create and its fingerprint. */
  private async captureBaseline(record: WorkspaceRecord, layer: string): Promise<void> {
    const paths = this.records.paths(record.workspace_id);
    await mkdir(dirname(paths.baselineTree), { recursive: true });
    await copyTree(layer, paths.baselineTree);
    await writeBaselineManifest(layer, paths);
  }
}
