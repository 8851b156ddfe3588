// Owns the workspace-core operations: a persistent sandbox per workspace under its own detached
// supervisor, seeded from a directory or archive, with an immutable baseline taken at create that
// diff and reset work against. Every guest path is confined again by the agent inside the sandbox.
import { execFile } from "node:child_process";
import { createReadStream, readlinkSync } from "node:fs";
import { lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";
import type { Readable } from "node:stream";
import { promisify } from "node:util";
import * as tar from "tar";
import { z } from "zod";
import { FileOp } from "../agent/fileops.js";
import { extractArchive, TarOp } from "../agent/tarops.js";
import { Stream } from "../channel/frame.js";
import { type AgentExecResult, AgentOp, type AgentServiceInfo, commandToArgv, ServiceOp } from "../channel/protocol.js";
import { DEFAULTS } from "../contract/defaults.js";
import { PyroError } from "../contract/errors.js";
import { parseParams } from "../contract/parse.js";
import type { EngineChoice } from "../contract/schemas.js";
import {
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
  type WorkspaceDiffResult,
  WorkspaceExecParams,
  type WorkspaceExecResult,
  type WorkspaceInfo,
  type WorkspaceListResult,
  type WorkspaceLogsResult,
  WorkspaceRefParams,
  type WorkspaceSummary,
  WorkspaceUpdateParams,
} from "../contract/workspace.js";
import { getEngine, selectEngine } from "../engines/index.js";
import type { EnvironmentStore, InstalledEnvironment } from "../environments/index.js";
import { SupervisorClient } from "../supervisor/client.js";
import { launchSupervisor, liveSupervisor } from "../supervisor/launch.js";
import { faultPoint } from "../util/fault.js";
import { linkStaysInside } from "../util/links.js";
import { processAlive } from "../util/process.js";
import { buildDiff, compareTrees, type DiffResult, manifestOfDir, TreeEntry } from "./diff.js";
import { exportLayerImage, listLayer, readLayer } from "./disk.js";
import type { ProgressReporter } from "./manager.js";
import { planPatch } from "./patch.js";
import { LAYOUT_VERSION, RecordStore, type WorkspaceRecord } from "./records.js";
import { Redactor } from "./redact.js";
import { SnapshotStore } from "./snapshots.js";

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
  const info = await stat(abs).catch(() => undefined);
  if (!info) throw new PyroError("INVALID_ARGUMENT", `${what} ${path} does not exist on the host`);
  if (info.isDirectory()) return { kind: "directory", path: abs };
  if (info.isFile() && /\.(tar|tar\.gz|tgz)$/.test(abs)) return { kind: "tar_archive", path: abs };
  throw new PyroError("INVALID_ARGUMENT", `${what} ${path} must be a directory or a .tar, .tar.gz or .tgz archive`);
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

export class WorkspaceService {
  readonly records: RecordStore;
  private readonly clients = new Map<string, SupervisorClient>();
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
      secrets: params.secrets.map((s) => ({ name: s.name, source_kind: s.value === undefined ? "file" : "literal" })),
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
      // The sandbox is not running yet: seed its writable layer and take the baseline on the host,
      // where a file costs a syscall instead of a trip through the sandbox's kernel.
      const layer = getEngine(record.engine).workspaceLayer(this.records.paths(id).sandbox);
      await mkdir(layer, { recursive: true, mode: 0o755 });
      if (seed) {
        progress?.phase("seed", seed.path);
        const skipped: string[] = [];
        const input = seed.kind === "directory" ? packDirectory(seed.path, skipped) : createReadStream(seed.path);
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
    const records = await this.records.all();
    records.sort((a, b) => b.last_activity_at.localeCompare(a.last_activity_at));
    const workspaces = await Promise.all(records.map((r) => this.info(r)));
    return { count: workspaces.length, workspaces };
  }

  async status(input: unknown): Promise<WorkspaceInfo> {
    const { workspace } = parseParams(WorkspaceRefParams, input, "workspace status");
    return this.info(await this.records.resolve(workspace));
  }

  async update(input: unknown): Promise<WorkspaceInfo> {
    const params = parseParams(WorkspaceUpdateParams, input, "workspace update");
    const current = await this.records.resolve(params.workspace);
    const apply = (r: WorkspaceRecord): WorkspaceRecord => {
      const labels = { ...r.labels, ...params.labels };
      for (const key of params.clear_labels) delete labels[key];
      return { ...r, name: params.name ?? r.name, labels, last_activity_at: new Date().toISOString() };
    };
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

  async logs(input: unknown): Promise<WorkspaceLogsResult> {
    const { workspace } = parseParams(WorkspaceRefParams, input, "workspace logs");
    const record = await this.records.resolve(workspace);
    const commands = await this.records.commands(record.workspace_id);
    return { workspace_id: record.workspace_id, count: commands.length, commands };
  }

  /** Deleting what is already gone succeeds: delete is idempotent. */
  async delete(input: unknown): Promise<{ workspace_id: string; deleted: boolean }> {
    const { workspace } = parseParams(WorkspaceRefParams, input, "workspace delete");
    let record: WorkspaceRecord;
    try {
      record = await this.records.resolve(workspace);
    } catch (err) {
      if (err instanceof PyroError && err.code === "WORKSPACE_NOT_FOUND")
        return { workspace_id: workspace, deleted: false };
      throw err;
    }
    await this.destroy(record.workspace_id);
    return { workspace_id: record.workspace_id, deleted: true };
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

  /** A cancelled signal cancels the request, and the agent kills the command's process group. */
  async exec(input: unknown, opts: { signal?: AbortSignal } = {}): Promise<WorkspaceExecResult> {
    const params = parseParams(WorkspaceExecParams, input, "workspace exec");
    const record = await this.records.resolve(params.workspace);
    const redactor = await this.redactor(record);
    return this.redacting(redactor, () => this.execIn(record, params, redactor, opts.signal));
  }

  private async execIn(
    record: WorkspaceRecord,
    params: z.output<typeof WorkspaceExecParams>,
    redactor: Redactor,
    signal: AbortSignal | undefined,
  ): Promise<WorkspaceExecResult> {
    const env = await this.secretEnvironment(record, params.secret_env);
    const client = await this.client(record);
    // A long command is activity from its start: the TTL reaper must not stop it midway.
    await this.touch(record.workspace_id);
    const startedAt = new Date();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const cwd = guestPath(params.cwd);
    const result = (await client.request(
      AgentOp.EXEC,
      {
        argv: commandToArgv(params.command),
        cwd,
        env,
        timeout_ms: params.timeout_seconds * 1000,
        max_output_bytes: DEFAULTS.outputMaxBytes,
      },
      {
        deadlineMs: params.timeout_seconds * 1000 + 30_000,
        signal,
        onData: (stream, chunk) => (stream === Stream.STDERR ? err : out).push(chunk),
      },
    )) as AgentExecResult;
    const stdout = Buffer.concat(out);
    const stderr = Buffer.concat(err);
    let sequence = 0;
    await this.records.mutate(record.workspace_id, async (r) => {
      sequence = r.command_count + 1;
      await this.records.appendCommand(r.workspace_id, {
        sequence,
        command: redactCommand(redactor, params.command),
        cwd,
        exit_code: result.exit_code,
        timed_out: result.timed_out,
        duration_ms: result.duration_ms,
        started_at: startedAt.toISOString(),
        stdout_bytes: stdout.length,
        stderr_bytes: stderr.length,
      });
      return { ...r, command_count: sequence, last_activity_at: new Date().toISOString() };
    });
    return {
      workspace_id: record.workspace_id,
      sequence,
      cwd,
      // Output cut at the cap may end in the first part of a secret: that part is dropped too.
      stdout: redactor.redactPiece("", stdout.toString("utf8"), { holdBack: result.stdout_truncated }).text,
      stderr: redactor.redactPiece("", stderr.toString("utf8"), { holdBack: result.stderr_truncated }).text,
      exit_code: result.exit_code,
      duration_ms: result.duration_ms,
      timed_out: result.timed_out,
      stdout_truncated: result.stdout_truncated,
      stderr_truncated: result.stderr_truncated,
      execution_mode: record.engine,
    };
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
    const result = (await (
      await this.client(record)
    ).request(
      FileOp.LIST,
      { path: guestPath(params.path), recursive: params.recursive },
      { deadlineMs: FILE_OP_DEADLINE_MS },
    )) as Omit<FileListResult, "workspace_id">;
    return { workspace_id: record.workspace_id, ...result };
  }

  /** A read: it never bumps last_activity_at. */
  async readFile(input: unknown): Promise<FileReadResult> {
    const params = parseParams(FileReadParams, input, "workspace file read");
    const record = await this.records.resolve(params.workspace);
    const result = (await (
      await this.client(record)
    ).request(
      FileOp.READ,
      { path: guestPath(params.path), max_bytes: params.max_bytes },
      { deadlineMs: FILE_OP_DEADLINE_MS },
    )) as Omit<FileReadResult, "workspace_id">;
    return {
      workspace_id: record.workspace_id,
      ...result,
      content: (await this.redactor(record)).redact(result.content),
    };
  }

  async writeFile(input: unknown): Promise<FileWriteResult> {
    const params = parseParams(FileWriteParams, input, "workspace file write");
    const record = await this.records.resolve(params.workspace);
    const result = (await (
      await this.client(record)
    ).request(
      FileOp.WRITE,
      { path: guestPath(params.path), content: params.text },
      { deadlineMs: FILE_OP_DEADLINE_MS },
    )) as Omit<FileWriteResult, "workspace_id">;
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
          const r = (await client.request(
            FileOp.READ,
            { path: join(GUEST_ROOT, path), max_bytes: 5 * 1024 * 1024 },
            { deadlineMs: FILE_OP_DEADLINE_MS },
          )) as { content: string; truncated: boolean };
          if (r.truncated) {
            throw new PyroError(
              "INVALID_ARGUMENT",
              `${path} is larger than 5 MiB; patch it with workspace_exec instead`,
            );
          }
          const entry = (await client.request(
            FileOp.LIST,
            { path: join(GUEST_ROOT, path) },
            { deadlineMs: FILE_OP_DEADLINE_MS },
          )) as {
            entries: Array<{ mode?: number }>;
          };
          return { content: r.content, mode: entry.entries[0]?.mode ?? 0o644 };
        } catch (err) {
          if (err instanceof PyroError && /does not exist|no such file|ENOENT/i.test(err.message)) return null;
          throw err;
        }
      },
    });
    for (const file of plan.files) {
      const target = join(GUEST_ROOT, file.path);
      if (file.status === "deleted")
        await client.request(FileOp.DELETE, { path: target }, { deadlineMs: FILE_OP_DEADLINE_MS });
      else
        await client.request(
          FileOp.WRITE,
          { path: target, content: file.content ?? "", ...(file.mode === undefined ? {} : { mode: file.mode }) },
          { deadlineMs: FILE_OP_DEADLINE_MS },
        );
    }
    await this.touch(record.workspace_id);
    return {
      workspace_id: record.workspace_id,
      changed: plan.files.length > 0,
      files: plan.files.map((f) => ({ path: f.path, status: f.status })),
    };
  }

  async diff(input: unknown): Promise<WorkspaceDiffResult> {
    const { workspace } = parseParams(WorkspaceRefParams, input, "workspace diff");
    const record = await this.records.resolve(workspace);
    const client = await this.client(record);
    const paths = this.records.paths(record.workspace_id);
    const baseline = z.array(TreeEntry).parse(JSON.parse(await readFile(paths.baselineManifest, "utf8")));
    const readBaseline = (path: string) => readBaselineEntry(paths.baselineTree, path);
    // Fast path: read the frozen sandbox's layer on the host; otherwise fingerprint in the guest.
    const result =
      (await getEngine(record.engine).withFrozenWorkspace(record.workspace_id, paths.sandbox, async (layer) =>
        buildDiff(compareTrees(baseline, await manifestOfDir(layer)), {
          readBaseline,
          readCurrent: (path) => readFile(join(layer, path)),
        }),
      )) ??
      (await (async () => {
        const reply = (await client.request(
          FileOp.TREE,
          { path: GUEST_ROOT },
          { deadlineMs: ARCHIVE_DEADLINE_MS },
        )) as {
          entries: unknown;
        };
        return buildDiff(compareTrees(baseline, z.array(TreeEntry).parse(reply.entries)), {
          readBaseline,
          readCurrent: (path) => this.readGuestBytes(client, join(GUEST_ROOT, path)),
        });
      })());
    return { workspace_id: record.workspace_id, ...result, patch: (await this.redactor(record)).redact(result.patch) };
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
    await mkdir(staging, { recursive: true });
    try {
      const client = await this.client(record);
      const exported = guestPath(params.path);
      let entryCount = 0;
      let bytes = 0;
      // node-tar refuses absolute paths, `..` and writing through symlinks: nothing lands outside staging.
      const extractor = tar.extract({
        cwd: staging,
        strict: true,
        preservePaths: false,
        onReadEntry: (entry) => {
          entryCount++;
          bytes += entry.size ?? 0;
        },
        // Regular files, directories, and symlinks that stay inside the export: a link to /etc or
        // ../.. in the workspace must not become a host link pointing out of the output.
        filter: (path, entry) => {
          const { type, linkpath } = entry as { type?: string; linkpath?: string };
          if (type === "SymbolicLink") return linkStaysInside(staging, path, linkpath ?? "");
          return type === "File" || type === "Directory" || type === "OldFile";
        },
      } as tar.TarOptionsWithAliasesAsyncNoFile);
      const done = new Promise<void>((res, rej) => {
        extractor.on("finish", () => res());
        extractor.on("error", rej);
      });
      const result = (await client.request(
        TarOp.EXPORT,
        { path: exported },
        { deadlineMs: ARCHIVE_DEADLINE_MS, onData: (_s, chunk) => extractor.write(chunk) },
      )) as { artifact_type: "file" | "directory" };
      extractor.end();
      await done;
      const produced = result.artifact_type === "directory" ? staging : join(staging, basename(exported));
      await rename(produced, output);
      await this.records.mutate(record.workspace_id, (r) => ({
        ...r,
        exports: [...r.exports, { workspace_path: exported, output_path: output, at: new Date().toISOString() }],
      }));
      return {
        workspace_id: record.workspace_id,
        workspace_path: exported,
        output_path: output,
        artifact_type: result.artifact_type,
        entry_count: result.artifact_type === "directory" ? Math.max(0, entryCount - 1) : entryCount,
        bytes_written: bytes,
      };
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
    const info = live
      ? await engine.withFrozenWorkspace(record.workspace_id, paths.sandbox, take)
      : await take(engine.workspaceLayer(paths.sandbox));
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
    const layer = await this.stoppedLayer(record, "disk list");
    return { workspace_id: record.workspace_id, ...(await listLayer(layer, guestPath(params.path), params.recursive)) };
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
    let diff: DiffResult | undefined;
    if (info.state === "running") diff = await this.diff({ workspace: record.workspace_id });
    return {
      workspace_id: record.workspace_id,
      name: record.name,
      state: info.state,
      commands: {
        total: commands.length,
        failed: commands.filter((c) => c.exit_code !== 0).length,
        last: commands.slice(-5),
      },
      changes: {
        changed: diff?.changed ?? false,
        total: diff?.summary.total ?? 0,
        added: diff?.summary.added ?? 0,
        modified: diff?.summary.modified ?? 0,
        deleted: diff?.summary.deleted ?? 0,
        type_changed: diff?.summary.type_changed ?? 0,
        files: diff?.files.map((f) => ({ path: f.path, status: f.status })) ?? [],
      },
      exports: record.exports,
      reset_count: record.reset_count,
    };
  }

  async close(): Promise<void> {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  // ---- internals --------------------------------------------------------------------------------

  async info(record: WorkspaceRecord): Promise<WorkspaceInfo> {
    const live = await liveSupervisor(this.records.paths(record.workspace_id).sandbox);
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
      vcpu_count: record.vcpu_count,
      mem_mib: record.mem_mib,
      ttl_seconds: record.ttl_seconds,
      network_policy: record.network_policy,
      workspace_seed: record.workspace_seed,
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
      const reply = (await client.request(ServiceOp.LIST, {}, { deadlineMs: 5_000 })) as {
        services: AgentServiceInfo[];
      };
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

  /** Runs fn and redacts the message of any error it throws. */
  async redacting<T>(redactor: Redactor, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw redactor.redactError(err);
    }
  }

  /** secret_env (secret name -> variable name) as the environment to hand the guest process. */
  async secretEnvironment(record: WorkspaceRecord, mapping: Record<string, string>): Promise<Record<string, string>> {
    const names = Object.keys(mapping);
    if (names.length === 0) return {};
    const { values } = await this.secrets(record);
    const env: Record<string, string> = {};
    for (const name of names) {
      const value = values[name];
      if (value === undefined) {
        const known = record.secrets?.map((s) => s.name).join(", ") || "none";
        throw new PyroError(
          "SECRET_NOT_FOUND",
          `workspace ${record.workspace_id} has no secret named ${name} (it has: ${known}); secrets are given at create with --secret or --secret-file`,
        );
      }
      env[mapping[name]!] = value;
    }
    return env;
  }

  async touch(id: string): Promise<void> {
    await this.records.mutate(id, (r) => ({ ...r, last_activity_at: new Date().toISOString() }));
  }

  /** Starts the workspace's supervisor on its (possibly existing) writable layer. */
  private async boot(record: WorkspaceRecord, environment: InstalledEnvironment): Promise<void> {
    const sandbox = this.records.paths(record.workspace_id).sandbox;
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
    if (live?.state !== "ready") {
      throw new PyroError(
        "WORKSPACE_NOT_RUNNING",
        `workspace ${record.name ?? record.workspace_id} is not running; start it with pyro workspace start ${record.workspace_id} (workspace_start)`,
      );
    }
    const client = await SupervisorClient.connect(live.socket);
    this.clients.set(record.workspace_id, client);
    return client;
  }

  private async importSource(
    record: WorkspaceRecord,
    source: SeedSource,
    dest: string,
  ): Promise<Omit<SyncPushResult, "workspace_id" | "source_path" | "dest">> {
    const client = await this.client(record);
    const skipped: string[] = [];
    const stream = source.kind === "directory" ? packDirectory(source.path, skipped) : createReadStream(source.path);
    const result = (await client.request(
      TarOp.IMPORT,
      { dest },
      { deadlineMs: ARCHIVE_DEADLINE_MS, input: stream as AsyncIterable<Uint8Array> },
    )) as { entry_count: number; bytes_written: number };
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
  private async readGuestBytes(client: SupervisorClient, path: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    const parser = new tar.Parser({
      onReadEntry: (entry) => {
        entry.on("data", (c: Buffer) => chunks.push(c));
      },
    });
    const done = new Promise<void>((res) => parser.on("end", () => res()));
    await client.request(
      TarOp.EXPORT,
      { path },
      { deadlineMs: ARCHIVE_DEADLINE_MS, onData: (_s, c) => parser.write(c) },
    );
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

/** buildDiff reads only files (symlinks come from their manifest entry). */
function readBaselineEntry(tree: string, path: string): Promise<Buffer> {
  return readFile(join(tree, path));
}
