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
import type { WorkspaceRecord } from "./records.js";
import type { Redactor } from "./redact.js";
import { guestPath, type WorkspaceService } from "./workspaces.js";

const SERVICE_OP_DEADLINE_MS = 30_000;
/** Lines of each stream a failed service's result carries. */
const FAILURE_LOG_LINES = 20;
const LIVE_STATES = new Set(["starting", "running", "ready"]);

export class ServiceService {
  constructor(private readonly workspaces: WorkspaceService) {}

  async start(params: z.output<typeof ServiceStartParams>, opts: { signal?: AbortSignal } = {}): Promise<ServiceInfo> {
    return this.withWorkspace(params.workspace, async (record, redactor) => {
      if (params.publish.length > 0 && record.network_policy !== "egress+published-ports") {
        throw new PyroError(
          "NETWORK_POLICY_DENIED",
          `workspace ${record.workspace_id} has network policy ${record.network_policy}, which publishes no ports; create a workspace with --network-policy egress+published-ports to use --publish`,
        );
      }
      const env = await this.workspaces.secrets.environment(record, params.secret_env);
      const client = await this.workspaces.client(record);
      // Ports a previous service of this name left open (it exited on its own) go first.
      if (record.network_policy === "egress+published-ports") await client.unpublish(params.service_name);
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
      await this.workspaces.touch(record.workspace_id);
      if (!LIVE_STATES.has(info.state)) {
        const tail = await this.logs({
          all: false,
          workspace: record.workspace_id,
          service_name: params.service_name,
          tail_lines: FAILURE_LOG_LINES,
        });
        return { ...serviceInfo(record, info, [], redactor), log_tail: { stdout: tail.stdout, stderr: tail.stderr } };
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
      return serviceInfo(record, info, ports, redactor);
    });
  }

  /** A read: it never bumps last_activity_at. */
  async list({ workspace }: Pick<z.output<typeof ServiceRefParams>, "workspace">): Promise<ServiceListResult> {
    return this.withWorkspace(workspace, async (record, redactor) => {
      const client = await this.workspaces.client(record);
      const reply = await client.call(ServiceOp.LIST, {}, { deadlineMs: SERVICE_OP_DEADLINE_MS });
      const ports = await this.portsOf(record, reply.services);
      const services = reply.services.map((s) => serviceInfo(record, s, ports.get(s.service_name) ?? [], redactor));
      return {
        workspace_id: record.workspace_id,
        count: services.length,
        running_count: services.filter((s) => LIVE_STATES.has(s.state)).length,
        services,
      };
    });
  }

  async status(params: z.output<typeof ServiceRefParams>): Promise<ServiceInfo> {
    return this.withWorkspace(params.workspace, async (record, redactor) => {
      const client = await this.workspaces.client(record);
      const info = await client.call(
        ServiceOp.STATUS,
        { name: params.service_name },
        { deadlineMs: SERVICE_OP_DEADLINE_MS },
      );
      const ports = await this.portsOf(record, [info]);
      return serviceInfo(record, info, ports.get(info.service_name) ?? [], redactor);
    });
  }

  async logs(params: z.output<typeof ServiceLogsParams>): Promise<ServiceLogsResult> {
    return this.withWorkspace(params.workspace, async (record, redactor) => {
      const client = await this.workspaces.client(record);
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
        workspace_id: record.workspace_id,
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
    return this.withWorkspace(params.workspace, async (record, redactor) => {
      const client = await this.workspaces.client(record);
      const info = await client.call(
        ServiceOp.STOP,
        { name: params.service_name, grace_ms: params.grace_seconds * 1000 },
        { deadlineMs: params.grace_seconds * 1000 + SERVICE_OP_DEADLINE_MS },
      );
      if (record.network_policy === "egress+published-ports") await client.unpublish(params.service_name);
      await this.workspaces.touch(record.workspace_id);
      return serviceInfo(record, info, [], redactor);
    });
  }

  /** Published ports by service; ports of services that ended on their own are closed here. */
  private async portsOf(record: WorkspaceRecord, services: AgentServiceInfo[]): Promise<Map<string, PublishedPort[]>> {
    const byOwner = new Map<string, PublishedPort[]>();
    if (record.network_policy !== "egress+published-ports") return byOwner;
    const client = await this.workspaces.client(record);
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

  private async withWorkspace<T>(
    ref: string,
    fn: (record: WorkspaceRecord, redactor: Redactor) => Promise<T>,
  ): Promise<T> {
    const record = await this.workspaces.records.resolve(ref);
    const redactor = await this.workspaces.secrets.redactor(record);
    return this.workspaces.secrets.redacting(redactor, () => fn(record, redactor));
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
