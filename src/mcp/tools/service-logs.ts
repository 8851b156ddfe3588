// Owns the `service_logs` tool: a service's stdout and stderr.
import { ServiceLogsParams, ServiceLogsResult } from "../../contract/interactive.js";
import { defineTool } from "../tool.js";

export const serviceLogs = defineTool({
  name: "service_logs",
  title: "Read a service's logs",
  description: [
    "Read a service's stdout and stderr: the last `tail_lines` lines of each (default 200), or everything",
    "kept (the last 1 MiB of each) with `all: true`. Works after the service has ended. Returns stdout,",
    "stderr and truncated.",
    "`workspace` takes the id or the name.",
  ].join(" "),
  inputSchema: ServiceLogsParams,
  outputSchema: ServiceLogsResult,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.services.logs(args),
});
