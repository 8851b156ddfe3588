// Owns the `workspace_diff` tool: what changed in /workspace since create.
import { WorkspaceDiffParams, WorkspaceDiffResult } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceDiff = defineTool({
  name: "workspace_diff",
  title: "Show what changed in a workspace",
  description: [
    "Show everything changed in /workspace since the workspace was created (against the baseline taken",
    "at create, whatever made the change: commands, file writes, patches or pushes), except what the",
    "repository's .gitignore files and .git/info/exclude ignore and .git/ internals: build output,",
    "node_modules, caches; `ignored` counts those, include_ignored: true shows them. Narrow it with",
    "`paths` and `exclude` (.gitignore-syntax patterns such as `src/`, `/README.md`, `*.min.js`). Use it",
    "to review work before reporting it or to hand the fix back as a patch. Returns changed, summary",
    "(total, added, modified, deleted, type_changed, binary), files (every changed path with its status)",
    "and patch: a unified diff of the text changes with git headers, ready for `git apply`; binary files",
    "are listed in files but left out of the patch. The patch is capped at 1 MiB: smallest changes go in",
    "first, and every text file left out is named in patch_omitted (check it before applying; call again",
    "with `paths` naming those files to get their patch). `workspace` takes the id or the name.",
  ].join(" "),
  inputSchema: WorkspaceDiffParams,
  outputSchema: WorkspaceDiffResult,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.diff(args),
});
