// Owns the `workspace_diff` tool: what changed in /workspace since create.
import { WorkspaceDiffResult, WorkspaceRefParams } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceDiff = defineTool({
  name: "workspace_diff",
  title: "Show what changed in a workspace",
  description: [
    "Show everything changed in /workspace since the workspace was created (against the baseline taken",
    "at create, whatever made the change: commands, file writes, patches or pushes). Use it to review",
    "work before reporting it or to hand the fix back as a patch. Returns changed (false when nothing",
    "changed), summary (total, added, modified, deleted, type_changed, binary), files (every changed path",
    "with its status) and patch: a unified diff of the text changes with git headers, ready for",
    "`git apply`; binary files are listed in files but left out of the patch. `workspace` takes the id or",
    "the name.",
  ].join(" "),
  inputSchema: WorkspaceRefParams,
  outputSchema: WorkspaceDiffResult,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.diff(args),
});
