// Owns the one object the faces call workspace operations on (`manager.workspaces`): the job
// services' public operations side by side, so a face never needs to know which service does what.
import type { DiskService } from "./disk-service.js";
import type { ExecService } from "./exec.js";
import type { FileService } from "./files.js";
import type { SnapshotService } from "./snapshot-service.js";
import type { TreeService } from "./trees.js";
import type { WorkspaceService } from "./workspaces.js";

const LIFECYCLE = ["create", "list", "update", "status", "logs", "policyCheck", "delete", "stop", "start"] as const;
const EXEC = ["exec", "execWait"] as const;
const FILES = ["syncPush", "listFiles", "readFile", "writeFile", "applyPatch"] as const;
const TREES = ["diff", "export", "summary"] as const;
const SNAPSHOTS = ["reset", "snapshotCreate", "snapshotList", "snapshotDelete"] as const;
const DISK = ["diskExport", "diskList", "diskRead"] as const;

export type WorkspaceOperations = Pick<WorkspaceService, (typeof LIFECYCLE)[number]> &
  Pick<ExecService, (typeof EXEC)[number]> &
  Pick<FileService, (typeof FILES)[number]> &
  Pick<TreeService, (typeof TREES)[number]> &
  Pick<SnapshotService, (typeof SNAPSHOTS)[number]> &
  Pick<DiskService, (typeof DISK)[number]>;

export interface WorkspaceJobs {
  lifecycle: WorkspaceService;
  exec: ExecService;
  files: FileService;
  trees: TreeService;
  snapshots: SnapshotService;
  disk: DiskService;
}

/** The operations of each job service, bound to it. */
export function workspaceOperations(jobs: WorkspaceJobs): WorkspaceOperations {
  const bind = <T extends object>(service: T, names: readonly (keyof T & string)[]) =>
    Object.fromEntries(names.map((name) => [name, (service[name] as (...a: unknown[]) => unknown).bind(service)]));
  return {
    ...bind(jobs.lifecycle, LIFECYCLE),
    ...bind(jobs.exec, EXEC),
    ...bind(jobs.files, FILES),
    ...bind(jobs.trees, TREES),
    ...bind(jobs.snapshots, SNAPSHOTS),
    ...bind(jobs.disk, DISK),
  } as WorkspaceOperations;
}
