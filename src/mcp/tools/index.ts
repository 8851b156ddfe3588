// Owns the registry of implemented MCP tools, keyed by name; profiles.ts decides which are exposed.
import { type McpProfile, PROFILE_TOOLS, type ToolName } from "../profiles.js";
import type { PyroTool } from "../tool.js";
import { serviceList } from "./service-list.js";
import { serviceLogs } from "./service-logs.js";
import { serviceStart } from "./service-start.js";
import { serviceStatus } from "./service-status.js";
import { serviceStop } from "./service-stop.js";
import { shellClose } from "./shell-close.js";
import { shellOpen } from "./shell-open.js";
import { shellRead } from "./shell-read.js";
import { shellSignal } from "./shell-signal.js";
import { shellWrite } from "./shell-write.js";
import { snapshotCreate } from "./snapshot-create.js";
import { snapshotDelete } from "./snapshot-delete.js";
import { snapshotList } from "./snapshot-list.js";
import { vmListEnvironments } from "./vm-list-environments.js";
import { vmRun } from "./vm-run.js";
import { workspaceCreate, workspaceCreateFull } from "./workspace-create.js";
import { workspaceDelete } from "./workspace-delete.js";
import { workspaceDiff } from "./workspace-diff.js";
import { workspaceDiskExport } from "./workspace-disk-export.js";
import { workspaceDiskList } from "./workspace-disk-list.js";
import { workspaceDiskRead } from "./workspace-disk-read.js";
import { workspaceExec, workspaceExecFull } from "./workspace-exec.js";
import { workspaceExecWait } from "./workspace-exec-wait.js";
import { workspaceExport } from "./workspace-export.js";
import { workspaceFileList } from "./workspace-file-list.js";
import { workspaceFileRead } from "./workspace-file-read.js";
import { workspaceFileWrite } from "./workspace-file-write.js";
import { workspaceList } from "./workspace-list.js";
import { workspaceLogs } from "./workspace-logs.js";
import { workspacePatchApply } from "./workspace-patch-apply.js";
import { workspaceReset } from "./workspace-reset.js";
import { workspaceStart } from "./workspace-start.js";
import { workspaceStatus } from "./workspace-status.js";
import { workspaceStop } from "./workspace-stop.js";
import { workspaceSummary } from "./workspace-summary.js";
import { workspaceSyncPush } from "./workspace-sync-push.js";
import { workspaceUpdate, workspaceUpdateFull } from "./workspace-update.js";

export const TOOLS: Readonly<Record<ToolName, PyroTool>> = {
  vm_run: vmRun,
  vm_list_environments: vmListEnvironments,
  workspace_create: workspaceCreate,
  workspace_list: workspaceList,
  workspace_update: workspaceUpdate,
  workspace_status: workspaceStatus,
  workspace_logs: workspaceLogs,
  workspace_summary: workspaceSummary,
  workspace_delete: workspaceDelete,
  workspace_stop: workspaceStop,
  workspace_start: workspaceStart,
  workspace_exec: workspaceExec,
  workspace_exec_wait: workspaceExecWait,
  workspace_sync_push: workspaceSyncPush,
  workspace_export: workspaceExport,
  workspace_diff: workspaceDiff,
  workspace_file_list: workspaceFileList,
  workspace_file_read: workspaceFileRead,
  workspace_file_write: workspaceFileWrite,
  workspace_patch_apply: workspacePatchApply,
  workspace_reset: workspaceReset,
  workspace_disk_export: workspaceDiskExport,
  workspace_disk_list: workspaceDiskList,
  workspace_disk_read: workspaceDiskRead,
  snapshot_create: snapshotCreate,
  snapshot_list: snapshotList,
  snapshot_delete: snapshotDelete,
  shell_open: shellOpen,
  shell_read: shellRead,
  shell_write: shellWrite,
  shell_signal: shellSignal,
  shell_close: shellClose,
  service_start: serviceStart,
  service_list: serviceList,
  service_status: serviceStatus,
  service_logs: serviceLogs,
  service_stop: serviceStop,
};

/** The tools a profile exposes: workspace-full's create and exec also take secrets, network policy
 * and secret_env, which the smaller profiles leave out of their schemas. */
export function toolsFor(profile: McpProfile): PyroTool[] {
  const full: Partial<Record<ToolName, PyroTool>> =
    profile === "workspace-full"
      ? {
          workspace_create: workspaceCreateFull,
          workspace_exec: workspaceExecFull,
          workspace_update: workspaceUpdateFull,
        }
      : {};
  return PROFILE_TOOLS[profile].map((name) => full[name] ?? TOOLS[name]);
}
