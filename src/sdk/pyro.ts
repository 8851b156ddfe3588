// Owns the TypeScript SDK: `new Pyro()` and its camelCase methods. Each method takes one options
// object whose fields are the contract's payload fields and returns the contract's payload, so code
// moves between the SDK, `pyro ... --json` and MCP tool calls without renaming anything.
import type { z } from "zod";
import {
  type ServiceInfo,
  type ServiceListResult,
  ServiceLogsParams,
  type ServiceLogsResult,
  ServiceRefParams,
  ServiceStartParams,
  ServiceStopParams,
  type ShellInfo,
  ShellOpenParams,
  ShellReadParams,
  type ShellReadResult,
  ShellRefParams,
  ShellSignalParams,
  ShellWriteParams,
  type ShellWriteResult,
} from "../contract/interactive.js";
import {
  type DoctorResult,
  EngineChoice,
  type EnvironmentInspect,
  type EnvironmentList,
  type EnvironmentPruneResult,
  type EnvironmentPullResult,
  RunParams,
  type RunResult,
} from "../contract/schemas.js";
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
  PolicyCheckParams,
  type PolicyCheckResult,
  ResetParams,
  type ResetResult,
  type SnapshotDeleteResult,
  type SnapshotInfo,
  type SnapshotListResult,
  SnapshotParams,
  SyncPushParams,
  type SyncPushResult,
  WorkspaceCreateParams,
  type WorkspaceDeleteResult,
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
import { LazyManager, type ManagerApi, type ManagerOptions, type ProgressReporter } from "./manager.js";
import { DoctorParams, EnvironmentParams, EnvironmentPullParams } from "./params.js";
import { parseOrThrow } from "./validate.js";

export interface PyroOptions extends ManagerOptions {
  /**
   * @internal An already open manager to call instead of opening one; the caller keeps ownership
   * and `close()` leaves it open. Used by the CLI, the MCP server and tests.
   */
  manager?: ManagerApi;
}

/** Per-call options of the exec methods. */
export interface ExecCallOptions {
  /** Aborting execWorkspace kills the command with every process it started (it resolves with
   * `cancelled: true`); aborting waitWorkspaceExec ends only the wait. */
  signal?: AbortSignal;
  /** Told the command's output as it arrives (redacted), before the call resolves. */
  onOutput?: (stream: "stdout" | "stderr", text: string) => void;
}

/** Per-call options that are not part of the payload. */
export interface CallOptions {
  /** Aborting stops the command and tears the sandbox down; the call rejects. */
  signal?: AbortSignal;
  /** Told each phase (pull, boot, exec, teardown) as it starts. */
  progress?: ProgressReporter;
}

// Strict copies: a misspelt field (`memMib`) would otherwise be dropped and its default used.
const RunRequest = RunParams.strict();
const Strict = {
  create: WorkspaceCreateParams.strict(),
  update: WorkspaceUpdateParams.strict(),
  ref: WorkspaceRefParams.strict(),
  logs: WorkspaceLogsParams.strict(),
  policyCheck: PolicyCheckParams.strict(),
  diff: WorkspaceDiffParams.strict(),
  exec: WorkspaceExecParams.strict(),
  execWait: WorkspaceExecWaitParams.strict(),
  syncPush: SyncPushParams.strict(),
  export: ExportParams.strict(),
  listFiles: FileListParams.strict(),
  readFile: FileReadParams.strict(),
  writeFile: FileWriteParams.strict(),
  applyPatch: PatchApplyParams.strict(),
  reset: ResetParams.strict(),
  snapshot: SnapshotParams.strict(),
  diskExport: DiskExportParams.strict(),
  openShell: ShellOpenParams.strict(),
  readShell: ShellReadParams.strict(),
  writeShell: ShellWriteParams.strict(),
  signalShell: ShellSignalParams.strict(),
  shellRef: ShellRefParams.strict(),
  startService: ServiceStartParams.strict(),
  listServices: WorkspaceRefParams.strict(),
  serviceRef: ServiceRefParams.strict(),
  logsService: ServiceLogsParams.strict(),
  stopService: ServiceStopParams.strict(),
};

export class Pyro {
  readonly #manager: LazyManager;

  constructor(options: PyroOptions = {}) {
    const { manager, ...managerOptions } = options;
    if (managerOptions.engine !== undefined) {
      parseOrThrow(EngineChoice, managerOptions.engine, "new Pyro", () => "engine");
    }
    this.#manager = new LazyManager(manager, managerOptions);
  }

  /**
   * Runs one command in a fresh sandbox that is destroyed when the command ends. A command that
   * runs and fails resolves with its `exit_code`; only a failure to run it rejects (PyroError).
   */
  async runInVm(params: RunParams, options: CallOptions = {}): Promise<RunResult> {
    const request = parseOrThrow(RunRequest, params, "runInVm");
    return (await this.#manager.get()).run(request, options);
  }

  /** The environment catalog and which entries are installed locally. */
  async listEnvironments(): Promise<EnvironmentList> {
    return (await this.#manager.get()).listEnvironments();
  }

  /** Builds an environment into the local cache (a no-op when a valid copy is there, unless `force`). */
  async pullEnvironment(
    params: EnvironmentPullParams,
    options: Pick<CallOptions, "progress"> = {},
  ): Promise<EnvironmentPullResult> {
    const request = parseOrThrow(EnvironmentPullParams, params, "pullEnvironment");
    return (await this.#manager.get()).pullEnvironment(request.environment, {
      force: request.force,
      progress: options.progress,
    });
  }

  async inspectEnvironment(params: EnvironmentParams): Promise<EnvironmentInspect> {
    const request = parseOrThrow(EnvironmentParams, params, "inspectEnvironment");
    return (await this.#manager.get()).inspectEnvironment(request.environment);
  }

  /** Removes cached environment builds that no catalog entry uses any more. */
  async pruneEnvironments(): Promise<EnvironmentPruneResult> {
    return (await this.#manager.get()).pruneEnvironments();
  }

  /** Host checks, the engine `auto` would pick and why, and leftovers of crashed sandboxes. */
  async doctor(params: DoctorParams = {}): Promise<DoctorResult> {
    const request = parseOrThrow(DoctorParams, params, "doctor");
    return (await this.#manager.get()).doctor(request);
  }

  // ---- workspaces: persistent sandboxes; `workspace` is the id or the unique name ---------------

  /**
   * Creates and starts a persistent workspace, optionally seeded from a host directory or archive
   * into /workspace; what it holds then is the baseline that diff and reset work against.
   */
  createWorkspace(params: WorkspaceCreateParams = {}): Promise<WorkspaceInfo> {
    return this.#workspaces("createWorkspace", Strict.create, params, (ws, request) => ws.create(request));
  }

  /** Every workspace, most recently active first. */
  async listWorkspaces(): Promise<WorkspaceListResult> {
    return (await this.#manager.get()).workspaces.list();
  }

  /** Renames a workspace, sets (`labels`) and removes (`clear_labels`) labels, or changes an
   * allowlist's rules while it runs (`allow_hosts`, `deny_hosts`, `allow_presets`, `remove_hosts`). */
  updateWorkspace(params: WorkspaceUpdateParams): Promise<WorkspaceInfo> {
    return this.#workspaces("updateWorkspace", Strict.update, params, (ws, request) => ws.update(request));
  }

  statusWorkspace(params: WorkspaceRefParams): Promise<WorkspaceInfo> {
    return this.#workspaces("statusWorkspace", Strict.ref, params, (ws, request) => ws.status(request));
  }

  /** The workspace's command history (exit codes, durations, output sizes; not the output), or
   * with `network: true` its allowlist network log. */
  logsWorkspace(params: WorkspaceLogsParams): Promise<WorkspaceLogsResult> {
    return this.#workspaces("logsWorkspace", Strict.logs, params, (ws, request) => ws.logs(request));
  }

  /** What the allowlist would decide for a URL or HOST:PORT, from the workspace's rules; no request is made. */
  checkNetworkPolicy(params: PolicyCheckParams): Promise<PolicyCheckResult> {
    return this.#workspaces("checkNetworkPolicy", Strict.policyCheck, params, (ws, request) => ws.policyCheck(request));
  }

  /** Commands run, files changed since create, exports and resets, in one payload. */
  summarizeWorkspace(params: WorkspaceRefParams): Promise<WorkspaceSummary> {
    return this.#workspaces("summarizeWorkspace", Strict.ref, params, (ws, request) => ws.summary(request));
  }

  /** Stops the sandbox and removes everything the workspace kept; deleting one already gone succeeds. */
  deleteWorkspace(params: WorkspaceRefParams): Promise<WorkspaceDeleteResult> {
    return this.#workspaces("deleteWorkspace", Strict.ref, params, (ws, request) => ws.delete(request));
  }

  /** Stops the sandbox; /workspace is kept for startWorkspace. */
  stopWorkspace(params: WorkspaceRefParams): Promise<WorkspaceInfo> {
    return this.#workspaces("stopWorkspace", Strict.ref, params, (ws, request) => ws.stop(request));
  }

  startWorkspace(params: WorkspaceRefParams): Promise<WorkspaceInfo> {
    return this.#workspaces("startWorkspace", Strict.ref, params, (ws, request) => ws.start(request));
  }

  /**
   * Runs one command in the workspace. A command that runs and fails resolves with its
   * `exit_code`; only a failure to run it rejects (PyroError). With `wait_seconds` a command still
   * running then resolves as `running: true` with its output so far: waitWorkspaceExec collects
   * the rest (this Pyro instance holds it; close() kills what still runs).
   */
  execWorkspace(params: WorkspaceExecParams, options: ExecCallOptions = {}): Promise<WorkspaceExecResult> {
    return this.#workspaces("execWorkspace", Strict.exec, params, (ws, request) => ws.exec(request, options));
  }

  /**
   * More of a command execWorkspace returned as running (by its `sequence`): the output since the
   * previous reply (or from `stdout_offset`/`stderr_offset`) and, once it ended, its exit code.
   * Waits at most `wait_seconds` (default 30); `cancel: true` kills it.
   */
  waitWorkspaceExec(params: WorkspaceExecWaitParams, options: ExecCallOptions = {}): Promise<WorkspaceExecResult> {
    return this.#workspaces("waitWorkspaceExec", Strict.execWait, params, (ws, request) =>
      ws.execWait(request, options),
    );
  }

  /** Copies a host directory or .tar/.tar.gz/.tgz into the workspace (default /workspace). */
  pushWorkspaceSync(params: SyncPushParams): Promise<SyncPushResult> {
    return this.#workspaces("pushWorkspaceSync", Strict.syncPush, params, (ws, request) => ws.syncPush(request));
  }

  /** Copies a file or directory out of the workspace to a host path that does not exist yet. */
  exportWorkspace(params: ExportParams): Promise<ExportResult> {
    return this.#workspaces("exportWorkspace", Strict.export, params, (ws, request) => ws.export(request));
  }

  /**
   * What changed in /workspace since create, as a summary, a file list and a unified patch; paths
   * the repository's .gitignore rules ignore and .git/ internals are left out (counted in `ignored`)
   * unless `include_ignored`; `paths`/`exclude` narrow it. Check `patch_omitted` before applying.
   */
  diffWorkspace(params: WorkspaceDiffParams): Promise<WorkspaceDiffResult> {
    return this.#workspaces("diffWorkspace", Strict.diff, params, (ws, request) => ws.diff(request));
  }

  listWorkspaceFiles(params: FileListParams): Promise<FileListResult> {
    return this.#workspaces("listWorkspaceFiles", Strict.listFiles, params, (ws, request) => ws.listFiles(request));
  }

  readWorkspaceFile(params: FileReadParams): Promise<FileReadResult> {
    return this.#workspaces("readWorkspaceFile", Strict.readFile, params, (ws, request) => ws.readFile(request));
  }

  /** Replaces a file's whole content (creating parent directories). */
  writeWorkspaceFile(params: FileWriteParams): Promise<FileWriteResult> {
    return this.#workspaces("writeWorkspaceFile", Strict.writeFile, params, (ws, request) => ws.writeFile(request));
  }

  /** Applies a unified diff to /workspace, all files or none. */
  applyWorkspacePatch(params: PatchApplyParams): Promise<PatchApplyResult> {
    return this.#workspaces("applyWorkspacePatch", Strict.applyPatch, params, (ws, request) => ws.applyPatch(request));
  }

  /** Puts /workspace back to the baseline taken at create, in a fresh sandbox. */
  resetWorkspace(params: ResetParams): Promise<ResetResult> {
    return this.#workspaces("resetWorkspace", Strict.reset, params, (ws, request) => ws.reset(request));
  }

  /** Saves /workspace as a named snapshot; unchanged files are shared with earlier snapshots. */
  createSnapshot(params: SnapshotParams): Promise<SnapshotInfo> {
    return this.#workspaces("createSnapshot", Strict.snapshot, params, (ws, request) => ws.snapshotCreate(request));
  }

  listSnapshots(params: WorkspaceRefParams): Promise<SnapshotListResult> {
    return this.#workspaces("listSnapshots", Strict.ref, params, (ws, request) => ws.snapshotList(request));
  }

  deleteSnapshot(params: SnapshotParams): Promise<SnapshotDeleteResult> {
    return this.#workspaces("deleteSnapshot", Strict.snapshot, params, (ws, request) => ws.snapshotDelete(request));
  }

  /** Writes a stopped workspace's files as a raw ext4 image, without starting a sandbox. */
  exportWorkspaceDisk(params: DiskExportParams): Promise<DiskExportResult> {
    return this.#workspaces("exportWorkspaceDisk", Strict.diskExport, params, (ws, request) => ws.diskExport(request));
  }

  /** Lists a stopped workspace's files without starting a sandbox. */
  listWorkspaceDisk(params: FileListParams): Promise<FileListResult> {
    return this.#workspaces("listWorkspaceDisk", Strict.listFiles, params, (ws, request) => ws.diskList(request));
  }

  /** Reads a stopped workspace's file without starting a sandbox. */
  readWorkspaceDisk(params: FileReadParams): Promise<FileReadResult> {
    return this.#workspaces("readWorkspaceDisk", Strict.readFile, params, (ws, request) => ws.diskRead(request));
  }

  /** Opens a PTY shell in the workspace (bash, `cols`×`rows`); it lives until closed or the workspace stops. */
  openShell(params: ShellOpenParams): Promise<ShellInfo> {
    return this.#call("openShell", Strict.openShell, params, (m, request) => m.shells.open(request));
  }

  /**
   * Output from `cursor` (0, or the last read's `next_cursor`); `plain` renders it as the terminal
   * shows it, `wait_for_idle_ms` waits for the output to go quiet first.
   */
  readShell(params: ShellReadParams): Promise<ShellReadResult> {
    return this.#call("readShell", Strict.readShell, params, (m, request) => m.shells.read(request));
  }

  /** Types `input` into the shell, followed by Enter unless `append_newline` is false. */
  writeShell(params: ShellWriteParams): Promise<ShellWriteResult> {
    return this.#call("writeShell", Strict.writeShell, params, (m, request) => m.shells.write(request));
  }

  /** Sends INT (default), TERM, HUP or KILL to the shell's foreground job. */
  signalShell(params: ShellSignalParams): Promise<ShellInfo> {
    return this.#call("signalShell", Strict.signalShell, params, (m, request) => m.shells.signal(request));
  }

  /** Ends the shell and every process it started. */
  closeShell(params: ShellRefParams): Promise<ShellInfo> {
    return this.#call("closeShell", Strict.shellRef, params, (m, request) => m.shells.close(request));
  }

  /** Starts a named service and waits for its readiness probe; `publish` forwards ports to 127.0.0.1. */
  startService(params: ServiceStartParams, options: Pick<CallOptions, "signal"> = {}): Promise<ServiceInfo> {
    return this.#call("startService", Strict.startService, params, (m, request) =>
      m.services.start(request, { signal: options.signal }),
    );
  }

  listServices(params: WorkspaceRefParams): Promise<ServiceListResult> {
    return this.#call("listServices", Strict.listServices, params, (m, request) => m.services.list(request));
  }

  statusService(params: ServiceRefParams): Promise<ServiceInfo> {
    return this.#call("statusService", Strict.serviceRef, params, (m, request) => m.services.status(request));
  }

  /** The service's stdout and stderr: the last `tail_lines` (default 200), or everything kept with `all`. */
  logsService(params: ServiceLogsParams): Promise<ServiceLogsResult> {
    return this.#call("logsService", Strict.logsService, params, (m, request) => m.services.logs(request));
  }

  /** TERM, then KILL after `grace_seconds`; its published ports close. */
  stopService(params: ServiceStopParams): Promise<ServiceInfo> {
    return this.#call("stopService", Strict.stopService, params, (m, request) => m.services.stop(request));
  }

  /** Releases the runtime this instance opened. Calling a method afterwards opens it again. */
  async close(): Promise<void> {
    await this.#manager.close();
  }

  /** Validates `params` in the method's own name, then calls the workspace operation. */
  async #workspaces<S extends z.ZodType, R>(
    method: string,
    schema: S,
    params: unknown,
    call: (workspaces: ManagerApi["workspaces"], request: z.output<S>) => Promise<R>,
  ): Promise<R> {
    return this.#call(method, schema, params, (manager, request) => call(manager.workspaces, request));
  }

  /** Validates `params` in the method's own name, then calls the manager. */
  async #call<S extends z.ZodType, R>(
    method: string,
    schema: S,
    params: unknown,
    call: (manager: ManagerApi, request: z.output<S>) => Promise<R>,
  ): Promise<R> {
    const request = parseOrThrow(schema, params, method);
    return call(await this.#manager.get(), request);
  }
}
