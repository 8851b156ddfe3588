// Owns the `service_list` tool: every service of a workspace.
import { ServiceListResult } from "../../contract/interactive.js";
import { WorkspaceRefParams } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const serviceList = defineTool({
  name: "service_list",
  title: "List a workspace's services",
  description: [
    "List the services started in a workspace with their state (starting, running, ready, exited,",
    "failed, stopped), exit codes and published ports. Returns count, running_count and services.",
    "`workspace` takes the id or the name.",
  ].join(" "),
  inputSchema: WorkspaceRefParams,
  outputSchema: ServiceListResult,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.services.list(args),
});
