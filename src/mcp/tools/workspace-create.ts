// Owns the `workspace_create` tool: a persistent sandbox, optionally seeded from the host.
import { WorkspaceCreateParams, WorkspaceInfo } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceCreate = defineTool({
  name: "workspace_create",
  title: "Create a persistent workspace",
  description: [
    "Create and start a persistent, isolated Linux workspace: a sandbox whose /workspace directory,",
    "installed packages and files survive between calls, for multi-step work such as reproducing a bug,",
    "editing, building and testing. Use vm_run instead for a single self-contained command.",
    "`seed_path` copies a host directory or .tar/.tar.gz/.tgz archive (e.g. the project checkout) into",
    "/workspace; what /workspace holds when this returns is the baseline that workspace_diff compares",
    "against and workspace_reset restores. Give it a unique `name` to refer to it by name later; every",
    "workspace tool's `workspace` argument takes the id or the name. The workspace has no network and",
    "expires after `ttl_seconds` idle (default 600; 0 = never); delete it with workspace_delete when done.",
    "Returns the workspace: workspace_id, name, labels, environment, engine, state, resources, seed,",
    "created_at, last_activity_at and expires_at.",
  ].join(" "),
  inputSchema: WorkspaceCreateParams,
  outputSchema: WorkspaceInfo,
  // Each call starts another sandbox; nothing reaches the network.
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  call: (args, { manager, progress }) => manager.workspaces.create(args, { progress }),
});
