// Owns the `service_start` tool: a named background process with a readiness probe.
import { ServiceInfo, ServiceStartParams } from "../../contract/interactive.js";
import { defineTool } from "../tool.js";

export const serviceStart = defineTool({
  name: "service_start",
  title: "Start a service",
  description: [
    "Start a long-running process (a dev server, a database, a worker) under `service_name` in a",
    "running workspace and wait until it is ready. `readiness` says how to tell: {type: 'http', url:",
    "'http://127.0.0.1:8000/'}, {type: 'tcp', host: '127.0.0.1', port: 5432}, {type: 'file', path:",
    "'ready.flag'} or {type: 'command', command: 'pg_isready'}, checked every `ready_interval_ms` for up to",
    "`ready_timeout_seconds` (default 30). Without `readiness` it is running as soon as it starts.",
    "`publish` ([{guest_port: 8000}] or with host_port) makes a guest port reachable at 127.0.0.1 on the",
    "host; it needs network policy egress+published-ports, and the service must listen on 0.0.0.0.",
    "Returns the service: state ready or running, or failed with `reason` and `log_tail` (the last log",
    "lines); published_ports gives the host ports. Read more output with service_logs.",
    "`workspace` takes the id or the name.",
  ].join(" "),
  inputSchema: ServiceStartParams,
  outputSchema: ServiceInfo,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  call: (args, { manager, signal }) => manager.services.start(args, { signal }),
});
