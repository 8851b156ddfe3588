// Owns which contract schema parses the request of each operation, by the name the manager gives
// it: the one parse a face makes before it calls the manager (which takes parsed requests only),
// in one table that the SDK, and tests standing in for a face, read.
import { z } from "zod";
import {
  ServiceLogsParams,
  ServiceRefParams,
  ServiceStartParams,
  ServiceStopParams,
  ShellOpenParams,
  ShellReadParams,
  ShellRefParams,
  ShellSignalParams,
  ShellWriteParams,
} from "./interactive.js";
import {
  DiskExportParams,
  ExportParams,
  FileListParams,
  FileReadParams,
  FileWriteParams,
  PatchApplyParams,
  PolicyCheckParams,
  ResetParams,
  SnapshotParams,
  SyncPushParams,
  WorkspaceCreateParams,
  WorkspaceDiffParams,
  WorkspaceExecParams,
  WorkspaceExecWaitParams,
  WorkspaceLogsParams,
  WorkspaceRefParams,
  WorkspaceUpdateParams,
} from "./workspace.js";

/** `manager.workspaces.NAME(request)`. */
export const WORKSPACE_REQUESTS = {
  create: WorkspaceCreateParams,
  update: WorkspaceUpdateParams,
  status: WorkspaceRefParams,
  logs: WorkspaceLogsParams,
  policyCheck: PolicyCheckParams,
  delete: WorkspaceRefParams,
  stop: WorkspaceRefParams,
  start: WorkspaceRefParams,
  exec: WorkspaceExecParams,
  execWait: WorkspaceExecWaitParams,
  syncPush: SyncPushParams,
  listFiles: FileListParams,
  readFile: FileReadParams,
  writeFile: FileWriteParams,
  applyPatch: PatchApplyParams,
  diff: WorkspaceDiffParams,
  export: ExportParams,
  summary: WorkspaceRefParams,
  reset: ResetParams,
  snapshotCreate: SnapshotParams,
  snapshotList: WorkspaceRefParams,
  snapshotDelete: SnapshotParams,
  diskExport: DiskExportParams,
  diskList: FileListParams,
  diskRead: FileReadParams,
} as const;

/** `manager.shells.NAME(request)`. */
export const SHELL_REQUESTS = {
  open: ShellOpenParams,
  read: ShellReadParams,
  write: ShellWriteParams,
  signal: ShellSignalParams,
  close: ShellRefParams,
} as const;

/** `manager.services.NAME(request)`. */
export const SERVICE_REQUESTS = {
  start: ServiceStartParams,
  list: z.object({ workspace: ServiceRefParams.shape.workspace }),
  status: ServiceRefParams,
  logs: ServiceLogsParams,
  stop: ServiceStopParams,
} as const;

/** An object whose operations take each table entry's parsed request as their first argument. */
export type TakesParsed<R extends Record<string, z.ZodType>> = {
  // biome-ignore lint/suspicious/noExplicitAny: the rest of each operation's arguments are its own.
  [K in keyof R]: (request: z.output<R[K]>, ...rest: any[]) => Promise<unknown>;
};
