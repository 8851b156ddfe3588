// Owns the workspace-core operations: a persistent sandbox per workspace under its own detached
// supervisor, seeded from a directory or archive, with an immutable baseline taken at create that
// diff and reset work against. Every guest path is confined again by the agent inside the sandbox.

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants, createReadStream, readlinkSync } from "node:fs";
import { access, lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { promisify } from "node:util";
import * as tar from "tar";
import { z } from "zod";
import { type AgentServiceInfo, commandToArgv, FileOp, ServiceOp, TarOp } from "../channel/protocol.js";
import { DEFAULTS, GUEST_TASK_LIMIT } from "../contract/defaults.js";
import { PyroError } from "../contract/errors.js";
import { parseParams } from "../contract/parse.js";
import type { EngineChoice } from "../contract/schemas.js";
import {
  CommandLogEntry,
  DiskExportParams,
  type DiskExportResult,
  ExportParams,
  type ExportResult,
  FileListParams,
  type FileListResult,
  FileReadParams,
  type FileReadResult,
  FileWriteParams,
  type FileWriteResult,
  PatchApplyParams,
  type PatchApplyResult,
  PolicyCheckParams,
  type PolicyCheckResult,
  ResetParams,
  type ResetResult,
  type SecretInput,
  type SnapshotDeleteResult,
  type SnapshotInfo,
  type SnapshotListResult,
  SnapshotParams,
  SyncPushParams,
  type SyncPushResult,
  WorkspaceCreateParams,
  WorkspaceDiffParams,
  type WorkspaceDiffResult,
  WorkspaceExecParams,
  type WorkspaceExecResult,
  WorkspaceExecWaitParams,
  type WorkspaceInfo,
  type WorkspaceListResult,
  WorkspaceLogsParams,
  type WorkspaceLogsResult,
  WorkspaceRefParams,
  type WorkspaceSummary,
  WorkspaceUpdateParams,
} from "../contract/workspace.js";
import { type CredentialConfig, createEgressCa } from "../egress/credentials.js";
import { type HostProxy, hostProxyAtCreate, maskedHostProxy, proxyEnvironment } from "../egress/host-proxy.js";
import { readNetworkLog } from "../egress/log.js";
import { getEngine, selectEngine } from "../engines/index.js";
import type { EnvironmentStore, InstalledEnvironment } from "../environments/index.js";
import { SupervisorClient } from "../supervisor/client.js";
import { launchSupervisor, liveSupervisor } from "../supervisor/launch.js";
import { SANDBOX_EXIT_FILE } from "../supervisor/protocol.js";
import { extractArchive } from "../util/archive.js";
import { CappedList } from "../util/capped-list.js";
import { faultPoint } from "../util/fault.js";
import { unreadableSource, unwritableTarget } from "../util/host-access.js";
import { linkStaysInside } from "../util/links.js";
import { processAlive } from "../util/process.js";
import {
  buildDiff,
  compareTrees,
  countChanges,
  type DiffIo,
  manifestOfDir,
  readHostFile,
  type Selection,
  selectChanges,
  TreeEntry,
  type Trees,
} from "./diff.js";
import { exportLayerImage, listLayer, readLayer } from "./disk.js";
import { type ExecRun, ExecRuns, FINISHED_RETAIN_MS, type OutputListener, waitForRun } from "./exec-runs.js";
import { checkFitsHost } from "./host-limits.js";
import { boundSecrets, checkPolicy, rulesAfterUpdate, rulesAtCreate } from "./network-rules.js";
import { planPatch } from "./patch.js";
import type { ProgressReporter } from "./progress.js";
import { LAYOUT_VERSION, RecordStore, type WorkspacePaths, type WorkspaceRecord } from "./records.js";
import { Redactor } from "./redact.js";
import { SnapshotStore } from "./snapshots.js";
import { loadTrust } from "./trust.js";

const run = promisify(execFile);
const GUEST_ROOT = DEFAULTS.guestWorkspace;
/** Bytes one tar stream may carry before the call is considered stuck. */
const ARCHIVE_DEADLINE_MS = 10 * 60_000;
const FILE_OP_DEADLINE_MS = 60_000;

export interface WorkspaceDeps {
  stateDir: string;
  environments: EnvironmentStore;
  engineChoice: EngineChoice;
  ensureEnvironment: (name: string, progress?: ProgressReporter) => Promise<InstalledEnvironment>;
}

/** Relative guest paths are relative to /workspace; the agent confines every path again. */
export function guestPath(path: string): string {
  return path.startsWith("/") ? path : join(GUEST_ROOT, path);
}

type SeedSource = { kind: "directory" | "tar_archive"; path: string };

async function classifySource(path: string, what: string): Promise<SeedSource> {
  const abs = resolve(path);
  const info = await stat(abs).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "EACCES") throw unreadableSource(what, path, err);
    return undefined;
  });
  if (!info) throw new PyroError("FILE_NOT_FOUND", `${what} ${path} does not exist on the host`);
  const kind = info.isDirectory()
    ? "directory"
    : info.isFile() && /\.(tar|tar\.gz|tgz)$/.test(abs)
      ? "tar_archive"
      : undefined;
  if (!kind) {
    throw new PyroError("INVALID_ARGUMENT", `${what} ${path} must be a directory or a .tar, .tar.gz or .tgz archive`);
  }
  // pyro reads a seed with the rights of the user who runs it (rootless or not, the kernel checks).
  await access(abs, kind === "directory" ? constants.R_OK | constants.X_OK : constants.R_OK).catch((err) => {
    throw unreadableSource(what, path, err as NodeJS.ErrnoException);
  });
  return { kind, path: abs };
}

/** The pack stream as a Node stream whose read fails (instead of an unhandled 'error' event
 * ending the process) when a directory inside cannot be read. */
function packedSource(dir: string, skipped: string[], what: string): PassThrough {
  const out = new PassThrough();
  // The reader may not have started yet; it finds the error when it does (stream.errored).
  out.on("error", () => {});
  const packed = packDirectory(dir, skipped);
  packed.on("error", (err: NodeJS.ErrnoException) => out.destroy(unreadableSource(what, dir, err)));
  packed.pipe(out);
  return out;
}

/**
 * A tar stream of a host directory that never reaches outside it: symlinks are archived as links
 * (never followed), links pointing outside the directory and special files are left out.
 */
function packDirectory(dir: string, skipped: string[]): Readable {
  return tar.create(
    {
      cwd: dir,
      portable: true,
      follow: false,
      filter: (entryPath, entry) => {
        const path = entryPath.replace(/^\.\//, "");
        const st = entry as { isSymbolicLink?: () => boolean; isFile?: () => boolean; isDirectory?: () => boolean };
        if (st.isSymbolicLink?.()) {
          let target: string;
          try {
            target = readlinkSync(join(dir, path));
          } catch {
            skipped.push(path);
            return false;
          }
          if (!linkStaysInside(dir, path, target)) {
            skipped.push(`${path} -> ${target}`);
            return false;
          }
          return true;
        }
        if (st.isFile?.() || st.isDirectory?.()) return true;
        skipped.push(path);
        return false;
      },
    },
    ["."],
  ) as unknown as Readable;
}

/** A guest text file: the agent streams its bytes (a reply frame holds at most 1 MiB). */
async function readGuestText(
  client: SupervisorClient,
  path: string,
  maxBytes: number,
): Promise<{ path: string; content: string; size_bytes: number; truncated: boolean }> {
  const chunks: Buffer[] = [];
  const reply = await client.call(
    FileOp.READ,
    { path, max_bytes: maxBytes },
    { deadlineMs: FILE_OP_DEADLINE_MS, onData: (_stream, chunk) => chunks.push(chunk) },
  );
  return { ...reply, content: Buffer.concat(chunks).toString("utf8") };
}

/** Writes a guest text file whole (temp file and rename in the agent), its bytes streamed. */
async function writeGuestText(
  client: SupervisorClient,
  path: string,
  text: string,
  mode?: number,
): Promise<{ path: string; bytes_written: number }> {
  return await client.call(
    FileOp.WRITE,
    { path, ...(mode === undefined ? {} : { mode }) },
    { deadlineMs: FILE_OP_DEADLINE_MS, input: Buffer.from(text, "utf8") },
  );
}

/** What a tar entry that export leaves out is, in words. */
const ENTRY_KINDS: Record<string, string> = {
  CharacterDevice: "character device",
  BlockDevice: "block device",
  FIFO: "FIFO",
  Socket: "socket",
};

export class WorkspaceService {
  readonly records: RecordStore;
  private readonly clients = new Map<string, SupervisorClient>();
  /** Commands this process runs, and ones just finished whose output a caller may still collect. */
  private readonly runs = new ExecRuns();
  /** Secret values and their redactor per workspace, read once (secrets are fixed at create). */
  private readonly secretsCache = new Map<string, { values: Record<string, string>; redactor: Redactor }>();

  constructor(private readonly deps: WorkspaceDeps) {
    this.records = new RecordStore(deps.stateDir);
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  /** Progress names the phases (pull when the environment is not built yet, seed, boot). */
  /** `seedOrigin` names what a generated seed came from (a project checkout), for the record. */
  async create(
    input: unknown,
    opts: { progress?: ProgressReporter; seedOrigin?: string } = {},
  ): Promise<WorkspaceInfo> {
    const progress = opts.progress;
    const params = parseParams(WorkspaceCreateParams, input, "workspace create");
    checkFitsHost(params);
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
      if (secretValues.size > 0) await this.saveSecrets(id, secretValues);
      if (trust) await writeFile(this.records.paths(id).trustedCa, trust.pem, { mode: 0o644 });
      if (hostProxy) await writeFile(this.records.paths(id).hostProxy, JSON.stringify(hostProxy), { mode: 0o600 });
      if (bound.size > 0) {
        const paths = this.records.paths(id);
        await createEgressCa([...new Set([...bound.values()].flat())], paths.egressCaCert, paths.egressCaKey, id);
      }
      // The sandbox is not running yet: seed its writable layer and take the baseline on the host,
      // where a file costs a syscall instead of a trip through the sandbox's kernel.
      const layer = getEngine(record.engine).workspaceLayer(this.records.paths(id).sandbox);
      await mkdir(layer, { recursive: true, mode: 0o755 });
      if (seed) {
        progress?.phase("seed", seed.path);
        const skipped: string[] = [];
        const input =
          seed.kind === "directory" ? packedSource(seed.path, skipped, "seed_path") : createReadStream(seed.path);
        const pushed = await extractArchive(input as AsyncIterable<Uint8Array>, layer);
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
      await this.boot(record, environment);
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

  async status(input: unknown): Promise<WorkspaceInfo> {
    const { workspace } = parseParams(WorkspaceRefParams, input, "workspace status");
    return this.info(await this.records.resolve(workspace));
  }

  async update(input: unknown): Promise<WorkspaceInfo> {
    const params = parseParams(WorkspaceUpdateParams, input, "workspace update");
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
      await (await this.client(current)).setEgressRules(rules);
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
  async policyCheck(input: unknown): Promise<PolicyCheckResult> {
    const params = parseParams(PolicyCheckParams, input, "workspace policy check");
    const record = await this.records.resolve(params.workspace);
    return checkPolicy(record.workspace_id, record.network_policy, record.network_rules, params.url);
  }

  async logs(input: unknown): Promise<WorkspaceLogsResult> {
    const params = parseParams(WorkspaceLogsParams, input, "workspace logs");
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
  async delete(input: unknown): Promise<{ workspace_id: string; deleted: boolean }> {
    const { workspace } = parseParams(WorkspaceRefParams, input, "workspace delete");
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

  async stop(input: unknown): Promise<WorkspaceInfo> {
    const { workspace } = parseParams(WorkspaceRefParams, input, "workspace stop");
    const record = await this.records.resolve(workspace);
    await this.halt(record);
    faultPoint("stop:halted");
    return this.info(await this.records.mutate(record.workspace_id, (r) => ({ ...r, desired_state: "stopped" })));
  }

  async start(input: unknown): Promise<WorkspaceInfo> {
    const { workspace } = parseParams(WorkspaceRefParams, input, "workspace start");
    const record = await this.records.resolve(workspace);
    this.assertComplete(record);
    // Activity first, so no TTL reaper in another process takes the new sandbox for an idle one.
    const updated = await this.records.mutate(record.workspace_id, (r) => ({
      ...r,
      desired_state: "running",
      expired_at: null,
      last_activity_at: new Date().toISOString(),
    }));
    if (!(await liveSupervisor(this.records.paths(record.workspace_id).sandbox))) {
      await this.boot(record, await this.deps.ensureEnvironment(record.environment));
    }
    return this.info(updated);
  }

  // ---- commands ---------------------------------------------------------------------------------

  /**
   * Runs a command; it gets its sequence number (its place in `workspace logs`) as it starts. With
   * `wait_seconds` the call returns a command still running then as `running: true` with its output
   * so far, and execWait collects the rest. An aborted signal cancels the command: the agent kills
   * it with every process it started, and the log records it as cancelled.
   */
  async exec(
    input: unknown,
    opts: { signal?: AbortSignal; onOutput?: OutputListener } = {},
  ): Promise<WorkspaceExecResult> {
    const params = parseParams(WorkspaceExecParams, input, "workspace exec");
    const record = await this.records.resolve(params.workspace);
    const redactor = await this.redactor(record);
    return this.redacting(redactor, async () => {
      const run = await this.startRun(record, params, redactor);
      return waitForRun(run, {
        waitMs: params.wait_seconds === undefined ? undefined : params.wait_seconds * 1000,
        signal: opts.signal,
        cancelOnAbort: true,
        onOutput: opts.onOutput,
      });
    });
  }

  /**
   * More of a command that exec returned as running: its output from the given offsets (default:
   * where the previous reply ended) and, once it has ended, its outcome. An aborted signal ends only
   * this wait; `cancel` kills the command.
   */
  async execWait(
    input: unknown,
    opts: { signal?: AbortSignal; onOutput?: OutputListener } = {},
  ): Promise<WorkspaceExecResult> {
    const params = parseParams(WorkspaceExecWaitParams, input, "workspace exec wait");
    const record = await this.records.resolve(params.workspace);
    const redactor = await this.redactor(record);
    return this.redacting(redactor, async () => {
      const run = this.runs.get(record.workspace_id, params.sequence);
      if (!run) throw await this.runNotHere(record, params.sequence);
      if (params.cancel) await run.cancel();
      return waitForRun(run, {
        waitMs: params.wait_seconds * 1000,
        signal: opts.signal,
        cancelOnAbort: false,
        onOutput: opts.onOutput,
        offsets: { stdout: params.stdout_offset, stderr: params.stderr_offset },
      });
    });
  }

  private async startRun(
    record: WorkspaceRecord,
    params: z.output<typeof WorkspaceExecParams>,
    redactor: Redactor,
  ): Promise<ExecRun> {
    const env = await this.secretEnvironment(record, params.secret_env);
    const client = await this.client(record);
    const cwd = guestPath(params.cwd);
    // The number is the command's from its start: a cancelled command keeps it in the log, and a
    // command that outlives this call is collected by it. A long command is activity from its start
    // on (and touched while it runs), so the TTL reaper does not stop it midway.
    let sequence = 0;
    await this.records.mutate(record.workspace_id, (r) => {
      sequence = r.command_count + 1;
      return { ...r, command_count: sequence, last_activity_at: new Date().toISOString() };
    });
    const command = redactCommand(redactor, params.command);
    return this.runs.start({
      client,
      workspaceId: record.workspace_id,
      sequence,
      cwd,
      executionMode: record.engine,
      redactor,
      agent: {
        argv: commandToArgv(params.command),
        cwd,
        env,
        timeout_ms: params.timeout_seconds * 1000,
        max_output_bytes: DEFAULTS.outputMaxBytes,
      },
      record: (run) => this.recordRun(run, command),
      keepAlive:
        record.ttl_seconds > 0
          ? {
              everyMs: Math.max(1_000, Math.min(60_000, (record.ttl_seconds * 1000) / 3)),
              touch: () => this.touch(record.workspace_id),
            }
          : undefined,
    });
  }

  /** Every command that started gets its log entry, with its cause when it did not end by itself.
   * One the agent refused before starting it (no such cwd) gives its number back if it still can. */
  private async recordRun(run: ExecRun, command: string | string[]): Promise<void> {
    const outcome = run.outcome;
    if (!outcome) return;
    if (run.error instanceof PyroError && run.error.code === "INVALID_ARGUMENT") {
      await this.records.mutate(run.workspaceId, (r) =>
        r.command_count === run.sequence ? { ...r, command_count: run.sequence - 1 } : r,
      );
      return;
    }
    await this.records.mutate(run.workspaceId, async (r) => {
      await this.records.appendCommand(r.workspace_id, {
        sequence: run.sequence,
        command,
        cwd: run.cwd,
        exit_code: outcome.exit_code,
        timed_out: outcome.timed_out,
        cancelled: outcome.cancelled,
        duration_ms: outcome.duration_ms,
        started_at: run.startedAt.toISOString(),
        stdout_bytes: run.stdout.bytes,
        stderr_bytes: run.stderr.bytes,
      });
      return { ...r, last_activity_at: new Date().toISOString() };
    });
  }

  /** Why execWait cannot find a command: it ended long enough ago, or another process ran it. */
  private async runNotHere(record: WorkspaceRecord, sequence: number): Promise<PyroError> {
    const logged = (await this.records.commands(record.workspace_id)).find((c) => c.sequence === sequence);
    const running = this.runs.running(record.workspace_id);
    const here = running.length > 0 ? ` (running here: ${running.join(", ")})` : "";
    if (logged) {
      const how = logged.timed_out ? "timed out" : logged.cancelled ? "was cancelled" : `exited ${logged.exit_code}`;
      return new PyroError(
        "INVALID_ARGUMENT",
        `command ${sequence} of workspace ${record.workspace_id} ${how} and its output is no longer kept (a finished command's output is kept ${FINISHED_RETAIN_MS / 60_000} min, by the process that ran it)${here}; see workspace_logs (pyro workspace logs) for its record`,
      );
    }
    return new PyroError(
      "INVALID_ARGUMENT",
      `workspace ${record.workspace_id} has no command ${sequence} started by this pyro process${here}; pass the sequence workspace_exec returned, to the same MCP server (a command ends with the process that started it)`,
    );
  }

  // ---- files ------------------------------------------------------------------------------------

  async syncPush(input: unknown): Promise<SyncPushResult> {
    const params = parseParams(SyncPushParams, input, "workspace sync push");
    const record = await this.records.resolve(params.workspace);
    const source = await classifySource(params.source_path, "source_path");
    const pushed = await this.importSource(record, source, params.dest);
    await this.touch(record.workspace_id);
    return { workspace_id: record.workspace_id, source_path: source.path, dest: params.dest, ...pushed };
  }

  async listFiles(input: unknown): Promise<FileListResult> {
    const params = parseParams(FileListParams, input, "workspace file list");
    const record = await this.records.resolve(params.workspace);
    return this.redactingAll(record, async () => {
      const result = await (await this.client(record)).call(
        FileOp.LIST,
        { path: guestPath(params.path), recursive: params.recursive },
        { deadlineMs: FILE_OP_DEADLINE_MS },
      );
      return { workspace_id: record.workspace_id, ...result };
    });
  }

  /** A read: it never bumps last_activity_at. */
  async readFile(input: unknown): Promise<FileReadResult> {
    const params = parseParams(FileReadParams, input, "workspace file read");
    const record = await this.records.resolve(params.workspace);
    return this.redactingAll(record, async () => {
      const result = await readGuestText(await this.client(record), guestPath(params.path), params.max_bytes);
      return { workspace_id: record.workspace_id, ...result };
    });
  }

  async writeFile(input: unknown): Promise<FileWriteResult> {
    const params = parseParams(FileWriteParams, input, "workspace file write");
    const record = await this.records.resolve(params.workspace);
    const result = await writeGuestText(await this.client(record), guestPath(params.path), params.text);
    await this.touch(record.workspace_id);
    return { workspace_id: record.workspace_id, ...result };
  }

  /** Every hunk of every file is checked against the current files before anything is written. */
  async applyPatch(input: unknown): Promise<PatchApplyResult> {
    const params = parseParams(PatchApplyParams, input, "workspace patch apply");
    const record = await this.records.resolve(params.workspace);
    const client = await this.client(record);
    const plan = await planPatch(params.patch, {
      read: async (path) => {
        try {
          const r = await readGuestText(client, join(GUEST_ROOT, path), 5 * 1024 * 1024);
          if (r.truncated) {
            throw new PyroError(
              "INVALID_ARGUMENT",
              `${path} is larger than 5 MiB; patch it with workspace_exec instead`,
            );
          }
          const entry = await client.call(
            FileOp.LIST,
            { path: join(GUEST_ROOT, path) },
            { deadlineMs: FILE_OP_DEADLINE_MS },
          );
          return { content: r.content, mode: entry.entries[0]?.mode ?? 0o644 };
        } catch (err) {
          if (err instanceof PyroError && err.code === "FILE_NOT_FOUND") return null;
          throw err;
        }
      },
    });
    for (const file of plan.files) {
      const target = join(GUEST_ROOT, file.path);
      if (file.status === "deleted")
        await client.call(FileOp.DELETE, { path: target }, { deadlineMs: FILE_OP_DEADLINE_MS });
      else await writeGuestText(client, target, file.content ?? "", file.mode);
    }
    await this.touch(record.workspace_id);
    return (await this.redactor(record)).redactDeep({
      workspace_id: record.workspace_id,
      changed: plan.files.length > 0,
      files: plan.files.map((f) => ({ path: f.path, status: f.status })),
    });
  }

  async diff(input: unknown): Promise<WorkspaceDiffResult> {
    const params = parseParams(WorkspaceDiffParams, input, "workspace diff");
    const record = await this.records.resolve(params.workspace);
    const filters = { includeIgnored: params.include_ignored, paths: params.paths, exclude: params.exclude };
    return this.redactingAll(record, async () => {
      const result = await this.withTrees(record, async (trees) => {
        const { changes, ignored } = await selectChanges(compareTrees(trees.baseline, trees.current), trees, filters);
        return { ...(await buildDiff(changes, trees)), ignored };
      });
      return { workspace_id: record.workspace_id, ...result };
    });
  }

  /**
   * Calls `fn` with the baseline and current manifests and readers of both: diff and summary look
   * at the same trees. Fast path: the frozen sandbox's layer, read on the host (the sandbox stays
   * paused while `fn` runs); otherwise the manifest is fingerprinted in the guest and files are
   * fetched one by one.
   */
  private async withTrees<T>(record: WorkspaceRecord, fn: (trees: Trees) => Promise<T>): Promise<T> {
    const client = await this.client(record);
    const paths = this.records.paths(record.workspace_id);
    const baseline = z.array(TreeEntry).parse(JSON.parse(await readFile(paths.baselineManifest, "utf8")));
    const readBaseline: DiffIo["readBaseline"] = (path, maxBytes) =>
      readHostFile(join(paths.baselineTree, path), maxBytes);
    const fromLayer = await this.withFrozen(record, async (layer) =>
      fn({
        baseline,
        current: await manifestOfDir(layer),
        readBaseline,
        readCurrent: (path, maxBytes) => readHostFile(join(layer, path), maxBytes),
      }),
    );
    if (fromLayer !== undefined) return fromLayer;
    const reply = await client.call(FileOp.TREE, { path: GUEST_ROOT }, { deadlineMs: ARCHIVE_DEADLINE_MS });
    return fn({
      baseline,
      current: z.array(TreeEntry).parse(reply.entries),
      readBaseline,
      readCurrent: (path, maxBytes) => this.readGuestBytes(client, join(GUEST_ROOT, path), maxBytes),
    });
  }

  async export(input: unknown): Promise<ExportResult> {
    const params = parseParams(ExportParams, input, "workspace export");
    const record = await this.records.resolve(params.workspace);
    const output = resolve(params.output_path);
    if (await lstat(output).catch(() => undefined)) {
      throw new PyroError(
        "OUTPUT_EXISTS",
        `${params.output_path} already exists; choose an output path that does not exist yet`,
      );
    }
    const staging = join(dirname(output), `.pyro-export-${basename(output)}-${process.pid}`);
    await mkdir(staging, { recursive: true }).catch((err) => {
      throw unwritableTarget("output_path", params.output_path, err);
    });
    try {
      const client = await this.client(record);
      const exported = guestPath(params.path);
      let entryCount = 0;
      let bytes = 0;
      const skipped = new CappedList();
      const modesCleared = new CappedList();
      // node-tar refuses absolute paths, `..` and writing through symlinks: nothing lands outside
      // staging. The files are the caller's (no guest uid or gid carried over, as root would by
      // default), and no guest file keeps a setuid, setgid or sticky bit on the host.
      const extractor = tar.extract({
        cwd: staging,
        strict: true,
        preservePaths: false,
        preserveOwner: false,
        onReadEntry: (entry) => {
          entryCount++;
          bytes += entry.size ?? 0;
        },
        // Regular files, directories, and symlinks that stay inside the export: a link to /etc or
        // ../.. in the workspace must not become a host link pointing out of the output.
        filter: (entryPath, entry) => {
          const e = entry as tar.ReadEntry;
          const path = entryPath.replace(/^(\.\/)+/, "");
          if (e.type === "SymbolicLink") {
            const inside = linkStaysInside(staging, entryPath, e.linkpath ?? "");
            if (!inside) skipped.add(`${path} (symlink to ${e.linkpath} points outside the copy)`);
            return inside;
          }
          // A hard link to another file of the export is that file again (its mode already cleared).
          if (e.type === "Link") {
            const target = resolve(staging, e.linkpath ?? "");
            if (target.startsWith(`${staging}/`)) return true;
            skipped.add(`${path} (hard link to ${e.linkpath}, outside the copy)`);
            return false;
          }
          if (e.type !== "File" && e.type !== "Directory" && e.type !== "OldFile") {
            skipped.add(`${path} (${ENTRY_KINDS[e.type] ?? e.type})`);
            return false;
          }
          if (e.mode !== undefined && (e.mode & 0o7000) !== 0) {
            if (e.type !== "Directory") modesCleared.add(path);
            e.mode &= 0o777;
          }
          return true;
        },
      } as tar.TarOptionsWithAliasesAsyncNoFile);
      const done = new Promise<void>((res, rej) => {
        extractor.on("finish", () => res());
        extractor.on("error", rej);
      });
      done.catch(() => {});
      let result: { artifact_type: "file" | "directory"; skipped?: string[]; skipped_more?: number };
      try {
        result = await client.call(
          TarOp.EXPORT,
          { path: exported },
          { deadlineMs: ARCHIVE_DEADLINE_MS, onData: (_s, chunk) => extractor.write(chunk) },
        );
      } catch (err) {
        // The guest's failure is the answer; what was already written is dropped with staging,
        // once the extractor has stopped writing into it.
        extractor.abort(err as Error);
        await done.catch(() => {});
        throw err;
      }
      skipped.addAll(result.skipped ?? [], result.skipped_more);
      extractor.end();
      await done;
      const produced = result.artifact_type === "directory" ? staging : join(staging, basename(exported));
      await rename(produced, output);
      await this.records.mutate(record.workspace_id, (r) => ({
        ...r,
        exports: [...r.exports, { workspace_path: exported, output_path: output, at: new Date().toISOString() }],
      }));
      return (await this.redactor(record)).redactDeep({
        workspace_id: record.workspace_id,
        workspace_path: exported,
        output_path: output,
        artifact_type: result.artifact_type,
        entry_count: result.artifact_type === "directory" ? Math.max(0, entryCount - 1) : entryCount,
        bytes_written: bytes,
        skipped: skipped.list(),
        modes_cleared: modesCleared.list(),
      });
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  async reset(input: unknown): Promise<ResetResult> {
    const params = parseParams(ResetParams, input, "workspace reset");
    const record = await this.records.resolve(params.workspace);
    this.assertComplete(record);
    await this.touch(record.workspace_id);
    const paths = this.records.paths(record.workspace_id);
    const source =
      params.snapshot === "baseline"
        ? paths.baselineTree
        : await this.snapshotStore(record)
            .get(params.snapshot)
            .then(() => this.snapshotStore(record).treePath(params.snapshot));
    await this.halt(record);
    // A fresh writable layer holding exactly the source tree is built beside the old one and swapped
    // in, so a crash leaves one whole layer or the other; then a fresh sandbox starts on it.
    const engine = getEngine(record.engine);
    const { layer, discard } = engine.resetLayout(paths.sandbox);
    const next = `${layer}.next`;
    const old = `${layer}.old`;
    await rm(next, { recursive: true, force: true });
    const nextLayer = join(next, relative(layer, engine.workspaceLayer(paths.sandbox)));
    await mkdir(dirname(nextLayer), { recursive: true });
    await copyTree(source, nextLayer);
    faultPoint("reset:built");
    await rm(old, { recursive: true, force: true });
    await rename(layer, old).catch(() => {});
    faultPoint("reset:swapping");
    await rename(next, layer);
    for (const path of [old, ...discard]) await rm(path, { recursive: true, force: true });
    await this.boot(record, await this.deps.ensureEnvironment(record.environment));
    const updated = await this.records.mutate(record.workspace_id, (r) => ({
      ...r,
      desired_state: "running",
      expired_at: null,
      reset_count: r.reset_count + 1,
      last_activity_at: new Date().toISOString(),
    }));
    return { workspace_id: record.workspace_id, snapshot: params.snapshot, reset_count: updated.reset_count };
  }

  // ---- snapshots and disk tools -----------------------------------------------------------------

  private snapshotStore(record: WorkspaceRecord): SnapshotStore {
    return new SnapshotStore(this.records.paths(record.workspace_id).snapshots);
  }

  /** A running workspace is frozen for the moment its layer is copied, so the snapshot is consistent. */
  async snapshotCreate(input: unknown): Promise<SnapshotInfo> {
    const params = parseParams(SnapshotParams, input, "snapshot create");
    const record = await this.records.resolve(params.workspace);
    const paths = this.records.paths(record.workspace_id);
    const engine = getEngine(record.engine);
    const store = this.snapshotStore(record);
    const take = (layer: string) => {
      faultPoint("snapshot:frozen");
      return store.create(params.snapshot_name, layer, { shareWith: [paths.baselineTree] });
    };
    const live = await liveSupervisor(paths.sandbox);
    const info = live ? await this.withFrozen(record, take) : await take(engine.workspaceLayer(paths.sandbox));
    if (!info) throw new PyroError("INTERNAL", `the ${record.engine} engine cannot snapshot a running workspace`);
    await this.touch(record.workspace_id);
    return { workspace_id: record.workspace_id, ...snapshotFields(info) };
  }

  async snapshotList(input: unknown): Promise<SnapshotListResult> {
    const { workspace } = parseParams(WorkspaceRefParams, input, "snapshot list");
    const record = await this.records.resolve(workspace);
    const list = await this.snapshotStore(record).list();
    return {
      workspace_id: record.workspace_id,
      count: list.count,
      snapshots: list.snapshots.map((s) => ({ workspace_id: record.workspace_id, ...snapshotFields(s) })),
    };
  }

  async snapshotDelete(input: unknown): Promise<SnapshotDeleteResult> {
    const params = parseParams(SnapshotParams, input, "snapshot delete");
    const record = await this.records.resolve(params.workspace);
    await this.snapshotStore(record).delete(params.snapshot_name);
    return { workspace_id: record.workspace_id, snapshot_name: params.snapshot_name, deleted: true };
  }

  /** The layer of a stopped workspace, read on the host without starting a sandbox. */
  private async stoppedLayer(record: WorkspaceRecord, what: string): Promise<string> {
    const paths = this.records.paths(record.workspace_id);
    if (await liveSupervisor(paths.sandbox)) {
      throw new PyroError(
        "WORKSPACE_RUNNING",
        `${what} reads a stopped workspace's disk; stop ${record.name ?? record.workspace_id} first (pyro workspace stop), or use the workspace file tools while it runs`,
      );
    }
    return getEngine(record.engine).workspaceLayer(paths.sandbox);
  }

  async diskList(input: unknown): Promise<FileListResult> {
    const params = parseParams(FileListParams, input, "disk list");
    const record = await this.records.resolve(params.workspace);
    return this.redactingAll(record, async () => {
      const layer = await this.stoppedLayer(record, "disk list");
      return {
        workspace_id: record.workspace_id,
        ...(await listLayer(layer, guestPath(params.path), params.recursive)),
      };
    });
  }

  async diskRead(input: unknown): Promise<FileReadResult> {
    const params = parseParams(FileReadParams, input, "disk read");
    const record = await this.records.resolve(params.workspace);
    const layer = await this.stoppedLayer(record, "disk read");
    const result = await readLayer(layer, guestPath(params.path), params.max_bytes);
    return {
      workspace_id: record.workspace_id,
      ...result,
      content: (await this.redactor(record)).redact(result.content),
    };
  }

  async diskExport(input: unknown): Promise<DiskExportResult> {
    const params = parseParams(DiskExportParams, input, "disk export");
    const record = await this.records.resolve(params.workspace);
    const layer = await this.stoppedLayer(record, "disk export");
    const result = await exportLayerImage(layer, resolve(params.output_path));
    return { workspace_id: record.workspace_id, ...result };
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
        await this.halt(record);
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

  async summary(input: unknown): Promise<WorkspaceSummary> {
    const { workspace } = parseParams(WorkspaceRefParams, input, "workspace summary");
    const record = await this.records.resolve(workspace);
    const commands = await this.records.commands(record.workspace_id);
    const info = await this.info(record);
    // The same selection as a default diff, without reading any file but the ignore rules.
    let selection: Selection | undefined;
    if (info.state === "running") {
      selection = await this.withTrees(record, (trees) =>
        selectChanges(compareTrees(trees.baseline, trees.current), trees),
      );
    }
    const counts = countChanges(selection?.changes ?? []);
    return (await this.redactor(record)).redactDeep({
      workspace_id: record.workspace_id,
      name: record.name,
      state: info.state,
      commands: {
        total: commands.length,
        failed: commands.filter((c) => c.exit_code !== 0).length,
        last: commands.slice(-5),
      },
      changes: {
        changed: counts.total > 0,
        ...counts,
        files: selection?.changes.map((c) => ({ path: c.path, status: c.status })) ?? [],
        // Unknown, so absent, while the workspace is not running.
        ignored: selection?.ignored,
      },
      exports: record.exports,
      reset_count: record.reset_count,
    });
  }

  async close(): Promise<void> {
    // A command outlives no process: kill the running ones now, and log them, while still connected.
    await this.runs.cancelAll();
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
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
      const client = await this.client(record);
      const reply = await client.call(ServiceOp.LIST, {}, { deadlineMs: 5_000 });
      return reply.services;
    } catch {
      return [];
    }
  }

  // ---- secrets ----------------------------------------------------------------------------------

  /** Values go to a file of their own, created 0600 before anything is written into it. */
  private async saveSecrets(id: string, values: Map<string, string>): Promise<void> {
    await writeFile(this.records.paths(id).secrets, JSON.stringify(Object.fromEntries(values)), {
      mode: 0o600,
      flag: "wx",
    });
  }

  private async secrets(record: WorkspaceRecord): Promise<{ values: Record<string, string>; redactor: Redactor }> {
    const cached = this.secretsCache.get(record.workspace_id);
    if (cached) return cached;
    let values: Record<string, string> = {};
    if (record.secrets?.length) {
      try {
        values = JSON.parse(await readFile(this.records.paths(record.workspace_id).secrets, "utf8")) as Record<
          string,
          string
        >;
      } catch {
        throw new PyroError(
          "INTERNAL",
          `the secrets file of workspace ${record.workspace_id} is missing or unreadable; recreate the workspace with its secrets`,
        );
      }
    }
    const loaded = { values, redactor: new Redactor(Object.values(values)) };
    this.secretsCache.set(record.workspace_id, loaded);
    return loaded;
  }

  /** Every value crossing back to a caller from this workspace goes through its redactor. */
  async redactor(record: WorkspaceRecord): Promise<Redactor> {
    return (await this.secrets(record)).redactor;
  }

  /** Runs fn, then redacts every string of its result (names and paths too) or of its error. */
  private async redactingAll<T>(record: WorkspaceRecord, fn: () => Promise<T>): Promise<T> {
    const redactor = await this.redactor(record);
    return redactor.redactDeep(await this.redacting(redactor, fn));
  }

  /** Runs fn and redacts the message of any error it throws. */
  async redacting<T>(redactor: Redactor, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw redactor.redactError(err);
    }
  }

  /** The host's proxy settings a workspace keeps (host_proxy), whole; undefined without them. */
  private async hostProxy(record: WorkspaceRecord): Promise<HostProxy | undefined> {
    if (!record.host_proxy) return undefined;
    const path = this.records.paths(record.workspace_id).hostProxy;
    try {
      return JSON.parse(await readFile(path, "utf8")) as HostProxy;
    } catch (err) {
      throw new PyroError(
        "INTERNAL",
        `workspace ${record.workspace_id} uses the host's proxy but ${path} cannot be read (${(err as Error).message}); recreate the workspace with host_proxy`,
      );
    }
  }

  /** The environment to hand a guest process: the host's proxy variables under the egress
   * policies (host_proxy), then secret_env (secret name -> variable name). */
  async secretEnvironment(record: WorkspaceRecord, mapping: Record<string, string>): Promise<Record<string, string>> {
    const proxy = record.network_policy === "allowlist" ? undefined : await this.hostProxy(record);
    const env: Record<string, string> = proxy ? proxyEnvironment(proxy) : {};
    const names = Object.keys(mapping);
    if (names.length === 0) return env;
    const { values } = await this.secrets(record);
    for (const name of names) {
      const value = values[name];
      if (value === undefined) {
        const known = record.secrets?.map((s) => s.name).join(", ") || "none";
        throw new PyroError(
          "SECRET_NOT_FOUND",
          `workspace ${record.workspace_id} has no secret named ${name} (it has: ${known}); secrets are given at create with --secret or --secret-file`,
        );
      }
      // A secret bound to hosts never enters the guest: the process gets its placeholder.
      const placeholder = record.secrets?.find((s) => s.name === name)?.placeholder;
      env[mapping[name]!] = placeholder ?? value;
    }
    return env;
  }

  async touch(id: string): Promise<void> {
    await this.records.mutate(id, (r) => ({ ...r, last_activity_at: new Date().toISOString() }));
  }

  /** Starts the workspace's supervisor on its (possibly existing) writable layer. */
  private async boot(record: WorkspaceRecord, environment: InstalledEnvironment): Promise<void> {
    const paths = this.records.paths(record.workspace_id);
    const sandbox = paths.sandbox;
    const credentials = boundCredentials(record, paths);
    // A dead supervisor's leftovers (mount, runsc state, netns) must go before a new one starts,
    // and a reset cut off mid-swap is finished.
    await getEngine(record.engine).cleanup(record.workspace_id, sandbox);
    await recoverLayerSwap(getEngine(record.engine).resetLayout(sandbox).layer);
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
  private async halt(record: WorkspaceRecord): Promise<void> {
    const sandbox = this.records.paths(record.workspace_id).sandbox;
    const cached = this.clients.get(record.workspace_id);
    this.clients.delete(record.workspace_id);
    cached?.close();
    const live = await liveSupervisor(sandbox);
    if (live) {
      const client = await SupervisorClient.connect(live.socket).catch(() => undefined);
      if (client) await client.shutdown();
      else process.kill(live.pid, "SIGTERM");
    }
    await getEngine(record.engine).cleanup(record.workspace_id, sandbox);
  }

  /** Halts, then moves the directory out of sight in one rename before removing it, so a crash
   * mid-delete leaves either the whole workspace or an unlisted trash directory (swept later). */
  private async destroy(id: string): Promise<void> {
    const record = await this.records.read(id);
    if (record) await this.halt(record);
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

  private assertComplete(record: WorkspaceRecord): void {
    if (record.incomplete) {
      throw new PyroError(
        "WORKSPACE_NOT_RUNNING",
        `workspace ${record.workspace_id} was not fully created (its creating process died); delete it with pyro workspace delete ${record.workspace_id} and create it again`,
      );
    }
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
  private async withFrozen<T>(record: WorkspaceRecord, fn: (layer: string) => Promise<T>): Promise<T | undefined> {
    try {
      return await getEngine(record.engine).withFrozenWorkspace(
        record.workspace_id,
        this.records.paths(record.workspace_id).sandbox,
        fn,
      );
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

  private async importSource(
    record: WorkspaceRecord,
    source: SeedSource,
    dest: string,
  ): Promise<Omit<SyncPushResult, "workspace_id" | "source_path" | "dest">> {
    const client = await this.client(record);
    const skipped: string[] = [];
    const stream =
      source.kind === "directory" ? packedSource(source.path, skipped, "source_path") : createReadStream(source.path);
    const result = await client.call(
      TarOp.IMPORT,
      { dest },
      { deadlineMs: ARCHIVE_DEADLINE_MS, input: stream as AsyncIterable<Uint8Array> },
    );
    return { entry_count: result.entry_count, bytes_written: result.bytes_written, skipped };
  }

  /** The immutable baseline: a host copy of /workspace at create and its fingerprint. */
  private async captureBaseline(record: WorkspaceRecord, layer: string): Promise<void> {
    const paths = this.records.paths(record.workspace_id);
    await mkdir(dirname(paths.baselineTree), { recursive: true });
    await copyTree(layer, paths.baselineTree);
    await writeFile(paths.baselineManifest, JSON.stringify(await manifestOfDir(paths.baselineTree)));
  }

  /** Whole file bytes from the guest (binary-safe), through a one-entry tar export. */
  /** A guest file's bytes; with maxBytes, only about that many are kept (the rest still streams by). */
  private async readGuestBytes(client: SupervisorClient, path: string, maxBytes = Infinity): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let kept = 0;
    const parser = new tar.Parser({
      onReadEntry: (entry) => {
        entry.on("data", (c: Buffer) => {
          if (kept >= maxBytes) return;
          chunks.push(c);
          kept += c.length;
        });
      },
    });
    const done = new Promise<void>((res) => parser.on("end", () => res()));
    await client.call(TarOp.EXPORT, { path }, { deadlineMs: ARCHIVE_DEADLINE_MS, onData: (_s, c) => parser.write(c) });
    parser.end();
    await done;
    return Buffer.concat(chunks);
  }
}

function snapshotFields(info: {
  snapshot_name: string;
  created_at: string;
  size_bytes: number;
  file_count: number;
  shared_bytes: number;
}) {
  const { snapshot_name, created_at, size_bytes, file_count, shared_bytes } = info;
  return { snapshot_name, created_at, size_bytes, file_count, shared_bytes };
}

/** Secret values from their inputs: literals as given, files read as UTF-8 text. */
async function loadSecrets(inputs: SecretInput[]): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  for (const input of inputs) {
    if (values.has(input.name)) {
      throw new PyroError("INVALID_ARGUMENT", `secret ${input.name} is given twice; give each secret once`);
    }
    let value = input.value;
    if (input.file_path !== undefined) {
      const bytes = await readFile(input.file_path).catch((err: NodeJS.ErrnoException) => {
        throw new PyroError(
          "INVALID_ARGUMENT",
          `cannot read the file of secret ${input.name} (${input.file_path}): ${err.code ?? err.message}`,
        );
      });
      value = bytes.toString("utf8");
      if (!Buffer.from(value, "utf8").equals(bytes)) {
        throw new PyroError("INVALID_ARGUMENT", `the file of secret ${input.name} is not UTF-8 text`);
      }
      // A trailing newline is how files end, not part of the secret.
      value = value.replace(/\r?\n$/, "");
    }
    if (!value) throw new PyroError("INVALID_ARGUMENT", `secret ${input.name} is empty; give it a value`);
    values.set(input.name, value);
  }
  return values;
}

/** The gateway's view of a workspace's bound secrets: which host gets which, and the CA to sign with. */
function boundCredentials(record: WorkspaceRecord, paths: WorkspacePaths): CredentialConfig | undefined {
  const hosts: CredentialConfig["hosts"] = {};
  for (const secret of record.secrets ?? []) {
    if (!secret.hosts || !secret.placeholder) continue;
    for (const host of secret.hosts) {
      hosts[host] = [...(hosts[host] ?? []), { name: secret.name, placeholder: secret.placeholder }];
    }
  }
  if (Object.keys(hosts).length === 0) return undefined;
  return { secretsFile: paths.secrets, caCert: paths.egressCaCert, caKey: paths.egressCaKey, hosts };
}

function redactCommand(redactor: Redactor, command: string | string[]): string | string[] {
  return typeof command === "string" ? redactor.redact(command) : command.map((w) => redactor.redact(w));
}

/** Finishes a reset's layer swap that a crash cut off: the new layer (<layer>.next) is complete once
 * the old one has been moved aside, so it goes into place; the old one is removed. */
async function recoverLayerSwap(upper: string): Promise<void> {
  const next = `${upper}.next`;
  const old = `${upper}.old`;
  const exists = (p: string) =>
    stat(p).then(
      () => true,
      () => false,
    );
  if (!(await exists(upper))) {
    if (await exists(next)) await rename(next, upper);
    else if (await exists(old)) await rename(old, upper);
  }
  await rm(next, { recursive: true, force: true });
  await rm(old, { recursive: true, force: true });
}

/** cp -a: modes, symlinks (not followed), empty directories and timestamps, at host speed. */
async function copyTree(from: string, to: string): Promise<void> {
  await rm(to, { recursive: true, force: true });
  try {
    await run("cp", ["-a", "--no-target-directory", from, to]);
  } catch (err) {
    throw new PyroError("INTERNAL", `copying ${from} to ${to} failed: ${(err as { stderr?: string }).stderr ?? err}`);
  }
}
