// Owns the `service_stop` tool: ending a service.
import { ServiceInfo, ServiceStopParams } from "../../contract/interactive.js";
import { defineTool } from "../tool.js";

export const serviceStop = defineTool({
  name: "service_stop",
  title: "Stop a service",
  description: [
    "Stop a service: TERM to it and everything it started, KILL after `grace_seconds` (default 5). Its",
    "published ports close. Stopping an ended service does nothing. Returns the service, state stopped.",
    "`workspace` takes the id or the name.",
  ].join(" "),
  inputSchema: ServiceStopParams,
  outputSchema: ServiceInfo,
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.services.stop(args),
});
