// Owns the `workspace_list` tool: every workspace, most recently active first.
import { z } from "zod";
import { WorkspaceListResult } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceList = defineTool({
  name: "workspace_list",
  title: "List workspaces",
  description: [
    "List every workspace on this host, most recently active first, with its id, name, labels, state",
    "(running, stopped, expired or failed), environment and timestamps. Use it to find a workspace created",
    "earlier (by name or label) before creating another one. Listing does not count as activity.",
    "Returns count and workspaces.",
  ].join(" "),
  inputSchema: z.object({}),
  outputSchema: WorkspaceListResult,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (_args, { manager }) => manager.workspaces.list(),
});
