// Owns the `workspace_start` tool: starting a stopped workspace again on its kept files.
import { WorkspaceInfo, WorkspaceRefParams } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceStart = defineTool({
  name: "workspace_start",
  title: "Start a stopped workspace",
  description: [
    "Start a new sandbox for a stopped workspace on the /workspace it kept (processes from before do not",
    "come back). Use it when a workspace tool reports that the workspace is not running. Starting a running",
    "workspace changes nothing. `workspace` takes the id or the name. Returns the workspace (state running).",
  ].join(" "),
  inputSchema: WorkspaceRefParams,
  outputSchema: WorkspaceInfo,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.start(args),
});
