// Owns the `workspace_stop` tool: stopping a workspace's sandbox while keeping its files.
import { WorkspaceInfo, WorkspaceRefParams } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceStop = defineTool({
  name: "workspace_stop",
  title: "Stop a workspace",
  description: [
    "Stop a workspace's sandbox to free its memory and CPU while keeping /workspace, the baseline and the",
    "command history on disk; processes running inside it end. workspace_start brings it back.",
    "`workspace` takes the id or the name. Returns the workspace (state stopped).",
  ].join(" "),
  inputSchema: WorkspaceRefParams,
  outputSchema: WorkspaceInfo,
  // Files survive, but whatever ran inside is killed.
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.stop(args),
});
