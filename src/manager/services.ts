// Owns the host side of services: start (waiting for readiness, then publishing ports on the
// host's 127.0.0.1 through the supervisor), list, status, logs and stop. The agent runs each
// service and its probes inside the sandbox; the supervisor holds the port forwards, which close
// with the service, and with the sandbox on stop, reset and delete. Logs are redacted here.
import type { z } from "zod";
import { Stream } from "../channel/frame.js";
import { type AgentServiceInfo, commandToArgv, ServiceOp } from "../channel/protocol.js";
import { PyroError } from "../contract/errors.js";
import type {
  Readiness,
  ServiceInfo,
  ServiceListResult,
  ServiceLogsParams,
  ServiceLogsResult,
  ServiceRefParams,
  ServiceStartParams,
  ServiceStopParams,
} from "../contract/interactive.js";
import type { PublishedPort } from "../supervisor/protocol.js";
import { guestPath } from "./guest.js";
import type { OpenWorkspace } from "./open-workspace.js";
import type { WorkspaceRecord } from "./records.js";
import type { Redactor } from "./redact.js";
import type { WorkspaceService } from "./workspaces.js";

const SERVICE_OP_DEADLINE_MS = 30_000;
/** Lines of each stream a failed service's result carries. */
const FAILURE_LOG_LINES = 20;
const LIVE_STATES = new Set(["starting", "running", "ready"]);

export class ServiceService {
  constructor(private readonly workspaces: WorkspaceService) {}

  async start(params: z.output<typeof ServiceStartParams>, opts: { signal?: AbortSignal } = {}): Promise<ServiceInfo> {
    return this.withWorkspace(params.workspace, async (ws, redactor) => {
      if (params.publish.length > 0 && ws.record.network_policy !== "egress+published-ports") {
        throw new PyroError(
          "NETWORK_POLICY_DENIED",
          `workspace ${ws.id} has network policy ${ws.record.network_policy}, which publishes no ports; create a workspace with --network-policy egress+published-ports to use --publish`,
        );
      }
      const env = await ws.environment(params.secret_env);
      const client = await ws.client();
      // Ports a previous service of this name left open (it exited on its own) go first.
      if (ws.record.network_policy === "egress+published-ports") await client.unpublish(params.service_name);
      const info = await client.call(
        ServiceOp.START,
        {
          name: params.service_name,
          argv: commandToArgv(params.command),
          cwd: guestPath(params.cwd),
          env,
          readiness: params.readiness ?? null,
          ready_timeout_ms: params.ready_timeout_seconds * 1000,
          ready_interval_ms: params.ready_interval_ms,
        },
        { deadlineMs: params.ready_timeout_seconds * 1000 + SERVICE_OP_DEADLINE_MS, signal: opts.signal },
      );
      await ws.touch();
      if (!LIVE_STATES.has(info.state)) {
        const tail = await this.logs({
          all: false,
          workspace: ws.id,
          service_name: params.service_name,
          tail_lines: FAILURE_LOG_LINES,
        });
        return {
          ...serviceInfo(ws.record, info, [], redactor),
          log_tail: { stdout: tail.stdout, stderr: tail.stderr },
        };
      }
      let ports: PublishedPort[] = [];
      if (params.publish.length > 0) {
        try {
          ports = await client.publish(
            params.service_name,
            params.publish.map((p) => ({ host_port: p.host_port ?? 0, guest_port: p.guest_port })),
          );
        } catch (err) {
          // A service whose ports cannot be published is not what was asked for: stop it.
          await client
            .call(
              ServiceOp.STOP,
              { name: params.service_name, grace_ms: 2_000 },
              { deadlineMs: SERVICE_OP_DEADLINE_MS },
            )
            .catch(() => {});
          throw err;
        }
      }
      return serviceInfo(ws.record, info, ports, redactor);
    });
  }

  /** A read: it never bumps last_activity_at. */
  async list({ workspace }: Pick<z.output<typeof ServiceRefParams>, "workspace">): Promise<ServiceListResult> {
    return this.withWorkspace(workspace, async (ws, redactor) => {
      const client = await ws.client();
      const reply = await client.call(ServiceOp.LIST, {}, { deadlineMs: SERVICE_OP_DEADLINE_MS });
      const ports = await this.portsOf(ws, reply.services);
      const services = reply.services.map((s) => serviceInfo(ws.record, s, ports.get(s.service_name) ?? [], redactor));
      return {
        workspace_id: ws.id,
        count: services.length,
        running_count: services.filter((s) => LIVE_STATES.has(s.state)).length,
        services,
      };
    });
  }

  async status(params: z.output<typeof ServiceRefParams>): Promise<ServiceInfo> {
    return this.withWorkspace(params.workspace, async (ws, redactor) => {
      const client = await ws.client();
      const info = await client.call(
        ServiceOp.STATUS,
        { name: params.service_name },
        { deadlineMs: SERVICE_OP_DEADLINE_MS },
      );
      const ports = await this.portsOf(ws, [info]);
      return serviceInfo(ws.record, info, ports.get(info.service_name) ?? [], redactor);
    });
  }

  async logs(params: z.output<typeof ServiceLogsParams>): Promise<ServiceLogsResult> {
    return this.withWorkspace(params.workspace, async (ws, redactor) => {
      const client = await ws.client();
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const reply = await client.call(
        ServiceOp.LOGS,
        { name: params.service_name, ...(params.all ? {} : { tail_lines: params.tail_lines }) },
        {
          deadlineMs: SERVICE_OP_DEADLINE_MS,
          onData: (stream, chunk) => (stream === Stream.STDERR ? err : out).push(chunk),
        },
      );
      return {
        workspace_id: ws.id,
        service_name: params.service_name,
        // The kept logs may begin inside a secret whose start was dropped; redact what is left of it.
        stdout: redactor.redact(Buffer.concat(out).toString("utf8")),
        stderr: redactor.redact(Buffer.concat(err).toString("utf8")),
        truncated: reply.truncated,
      };
    });
  }

  /** TERM, then KILL after the grace period; the service's published ports close with it. */
  async stop(params: z.output<typeof ServiceStopParams>): Promise<ServiceInfo> {
    return this.withWorkspace(params.workspace, async (ws, redactor) => {
      const client = await ws.client();
      const info = await client.call(
        ServiceOp.STOP,
        { name: params.service_name, grace_ms: params.grace_seconds * 1000 },
        { deadlineMs: params.grace_seconds * 1000 + SERVICE_OP_DEADLINE_MS },
      );
      if (ws.record.network_policy === "egress+published-ports") await client.unpublish(params.service_name);
      await ws.touch();
      return serviceInfo(ws.record, info, [], redactor);
    });
  }

  /** Published ports by service; ports of services that ended on their own are closed here. */
  private async portsOf(ws: OpenWorkspace, services: AgentServiceInfo[]): Promise<Map<string, PublishedPort[]>> {
    const byOwner = new Map<string, PublishedPort[]>();
    if (ws.record.network_policy !== "egress+published-ports") return byOwner;
    const client = await ws.client();
    for (const port of await client.ports()) {
      byOwner.set(port.owner, [...(byOwner.get(port.owner) ?? []), port]);
    }
    for (const service of services) {
      if (!LIVE_STATES.has(service.state) && byOwner.has(service.service_name)) {
        await client.unpublish(service.service_name);
        byOwner.delete(service.service_name);
      }
    }
    return byOwner;
  }

  private async withWorkspace<T>(ref: string, fn: (ws: OpenWorkspace, redactor: Redactor) => Promise<T>): Promise<T> {
    const ws = await this.workspaces.open(ref);
    const redactor = await ws.redactor();
    return ws.redacting(() => fn(ws, redactor));
  }
}

function serviceInfo(
  record: WorkspaceRecord,
  info: AgentServiceInfo,
  ports: PublishedPort[],
  redactor: Redactor,
): ServiceInfo {
  return {
    workspace_id: record.workspace_id,
    service_name: info.service_name,
    state: info.state,
    pid: info.pid,
    cwd: info.cwd,
    started_at: info.started_at,
    ready_at: info.ready_at,
    ended_at: info.ended_at,
    exit_code: info.exit_code,
    readiness: redactReadiness(info.readiness, redactor),
    reason: info.reason === null ? null : redactor.redact(info.reason),
    published_ports: ports.map((p) => ({ host: p.host, host_port: p.host_port, guest_port: p.guest_port })),
  };
}

function redactReadiness(readiness: Readiness | null, redactor: Redactor): Readiness | null {
  if (redactor.empty || readiness === null) return readiness;
  return JSON.parse(redactor.redact(JSON.stringify(readiness))) as Readiness;
}
