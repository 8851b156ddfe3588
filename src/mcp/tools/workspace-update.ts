// Owns the `workspace_update` tool: renaming a workspace, changing its labels, and (workspace-full)
// changing an allowlist's network rules while it runs.
import { WorkspaceInfo, WorkspaceUpdateParams } from "../../contract/workspace.js";
import { asRequest, defineTool } from "../tool.js";

export const workspaceUpdate = defineTool({
  name: "workspace_update",
  title: "Rename or relabel a workspace",
  description: [
    "Change a workspace's metadata: give it a new unique `name`, set `labels` (merged into the existing",
    "ones) and remove label keys listed in `clear_labels`. Files and processes are not touched.",
    "`workspace` takes the id or the current name. Returns the updated workspace.",
  ].join(" "),
  inputSchema: WorkspaceUpdateParams.omit({
    allow_hosts: true,
    deny_hosts: true,
    allow_presets: true,
    remove_hosts: true,
  }),
  outputSchema: WorkspaceInfo,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.update(asRequest(WorkspaceUpdateParams, args, "workspace_update")),
});

/** workspace-full's update: also the allowlist's rules. */
export const workspaceUpdateFull = defineTool({
  ...workspaceUpdate,
  description: [
    workspaceUpdate.description,
    "Under network policy allowlist, `allow_hosts`, `deny_hosts` and `allow_presets` add rules and",
    "`remove_hosts` removes rules as written; a running workspace applies them to the next connection.",
  ].join(" "),
  inputSchema: WorkspaceUpdateParams,
});
