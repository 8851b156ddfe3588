// Owns the `service_status` tool: one service's state.
import { ServiceInfo, ServiceRefParams } from "../../contract/interactive.js";
import { defineTool } from "../tool.js";

export const serviceStatus = defineTool({
  name: "service_status",
  title: "Show a service's state",
  description: [
    "Show one service: state (starting, running, ready, exited, failed, stopped), pid, ready_at,",
    "exit_code, the failure reason, readiness and published_ports.",
    "`workspace` takes the id or the name.",
  ].join(" "),
  inputSchema: ServiceRefParams,
  outputSchema: ServiceInfo,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.services.status(args),
});
