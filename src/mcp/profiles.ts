// Owns which MCP tools each `--profile` exposes: the one table later issues extend when they add a
// tool. Each profile is a strict superset of the one before it (CONTRACT.md, "Profiles").
import { z } from "zod";

export const McpProfile = z.enum(["vm-run", "workspace-core", "workspace-full"]);
export type McpProfile = z.infer<typeof McpProfile>;

export const DEFAULT_PROFILE: McpProfile = "workspace-core";

/** `pyro mcp serve --mode`'s use cases (modes.ts says what each one is). */
export const McpMode = z.enum(["repro-fix", "inspect", "cold-start", "review-eval"]);
export type McpMode = z.infer<typeof McpMode>;

const VM_RUN = ["vm_run"] as const;
const WORKSPACE_CORE = [
  ...VM_RUN,
  "workspace_create",
  "workspace_list",
  "workspace_update",
  "workspace_status",
  "workspace_logs",
  "workspace_summary",
  "workspace_delete",
  "workspace_exec",
  "workspace_exec_wait",
  "workspace_sync_push",
  "workspace_file_list",
  "workspace_file_read",
  "workspace_file_write",
  "workspace_patch_apply",
  "workspace_diff",
  "workspace_export",
  "workspace_reset",
] as const;
const WORKSPACE_FULL = [
  ...WORKSPACE_CORE,
  "vm_list_environments",
  "workspace_stop",
  "workspace_start",
  "workspace_disk_export",
  "workspace_disk_list",
  "workspace_disk_read",
  "snapshot_create",
  "snapshot_list",
  "snapshot_delete",
  "shell_open",
  "shell_read",
  "shell_write",
  "shell_signal",
  "shell_close",
  "service_start",
  "service_list",
  "service_status",
  "service_logs",
  "service_stop",
] as const;

export type ToolName = (typeof WORKSPACE_FULL)[number];

export const PROFILE_TOOLS: Readonly<Record<McpProfile, readonly ToolName[]>> = {
  "vm-run": VM_RUN,
  "workspace-core": WORKSPACE_CORE,
  "workspace-full": WORKSPACE_FULL,
};
