// Owns the `workspace_patch_apply` tool: applying a unified diff to a workspace, all files or none.
import { PatchApplyParams, PatchApplyResult } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspacePatchApply = defineTool({
  name: "workspace_patch_apply",
  title: "Apply a patch in a workspace",
  description: [
    "Apply a unified diff (`git diff` or `diff -u` format, paths relative to /workspace, a/ and b/",
    "prefixes allowed) to a workspace; it may modify, add and delete text files. Prefer it over sed or",
    "shell heredocs through workspace_exec to edit existing files. Every hunk is checked against the",
    "current files before anything is written, so either the whole patch applies or nothing changes; a",
    "patch that does not apply fails with the file and hunk to fix. `workspace` takes the id or the name.",
    "Returns workspace_id, changed and files (each path with its status: added, modified or deleted).",
  ].join(" "),
  inputSchema: PatchApplyParams,
  outputSchema: PatchApplyResult,
  // Applying the same patch twice fails the second time (its hunks no longer match).
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.applyPatch(args),
});
