// Owns the `workspace_status` tool: one workspace's record and state.
import { WorkspaceInfo, WorkspaceRefParams } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceStatus = defineTool({
  name: "workspace_status",
  title: "Show a workspace",
  description: [
    "Show one workspace: whether its sandbox is running (state running, stopped, expired or failed),",
    "its environment, engine, resources, seed, labels, command and reset counts, and when it was last",
    "active and will expire. `workspace` takes the id or the name. Reading the status does not count as",
    "activity. Returns the workspace.",
  ].join(" "),
  inputSchema: WorkspaceRefParams,
  outputSchema: WorkspaceInfo,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.status(args),
});
