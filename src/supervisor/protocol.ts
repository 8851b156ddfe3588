// Owns the operations the supervisor answers itself on its socket; every other operation is
// proxied to the guest agent unchanged. Also the records of a supervisor others read.
import { z } from "zod";
import { Hello } from "../channel/channel.js";
import { op } from "../channel/ops.js";
import { EngineName } from "../contract/schemas.js";

export const SupervisorOp = {
  STATUS: "supervisor.status",
  SHUTDOWN: "supervisor.shutdown",
  /** {owner, ports: [{host_port, guest_port}]} -> {ports: PublishedPort[]}; all or nothing. */
  PUBLISH: "supervisor.publish",
  /** {owner} -> {removed}: closes every port the owner published. */
  UNPUBLISH: "supervisor.unpublish",
  /** {} -> {ports: PublishedPort[]} */
  PORTS: "supervisor.ports",
  /** {allow, deny} -> {rules}: replaces the egress gateway's rules (network policy allowlist). */
  EGRESS_RULES: "supervisor.egress_rules",
} as const;

const Port = z.number().int().min(1).max(65_535);

/** A host port forwarded into the sandbox on behalf of an owner (a service name). */
export const PublishedPort = z.object({
  owner: z.string(),
  host: z.literal("127.0.0.1"),
  host_port: Port,
  guest_port: Port,
});
export type PublishedPort = z.infer<typeof PublishedPort>;
export const PublishedPorts = z.object({ ports: z.array(PublishedPort) });

export const SupervisorState = z.enum(["starting", "ready", "stopping", "stopped", "failed"]);
export type SupervisorState = z.infer<typeof SupervisorState>;

export const PublishParams = z.object({
  /** Who the ports are published for (a service name); unpublish closes all of an owner's. */
  owner: z.string().min(1),
  /** host_port 0: pyro picks a free port. All or nothing. */
  ports: z.array(z.object({ host_port: z.number().int().min(0).max(65_535), guest_port: Port })).min(1),
});

/** supervisor.status's answer. */
export const SupervisorStatus = z.object({
  id: z.string(),
  engine: EngineName,
  state: SupervisorState,
  supervisor_pid: z.number().int(),
  sandbox_pids: z.array(z.number().int()),
  started_at: z.string(),
  agent: Hello.nullable(),
});
export type SupervisorStatus = z.infer<typeof SupervisorStatus>;

/** What the supervisor process reads at start (written by the launcher into its run dir). */
export const SUPERVISOR_CONFIG_FILE = "supervisor.json";
export const SUPERVISOR_STATE_FILE = "supervisor.state.json";
export const SUPERVISOR_LOG_FILE = "supervisor.log";
export const SUPERVISOR_SOCKET_FILE = "supervisor.sock";

/** The supervisor's record of itself, so any process can find it and tell whether it is alive. */
export const SupervisorStateRecord = z.object({
  pid: z.number().int().positive(),
  id: z.string(),
  socket: z.string(),
  state: z.enum(["starting", "ready", "stopped", "failed"]),
  updated_at: z.string(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});
export type SupervisorStateRecord = z.infer<typeof SupervisorStateRecord>;

/** In the run dir: why the sandbox of the last run ended when nobody asked it to (one line). Read
 * by the workspace service to say why a workspace is not running; removed at the next start. */
export const SANDBOX_EXIT_FILE = "sandbox-exit.txt";

const NoParams = z.object({});
const Rules = z.object({ allow: z.array(z.string()), deny: z.array(z.string()) });

/** The operations the supervisor answers itself, with what each takes and answers. */
export const SUPERVISOR_OPS = {
  [SupervisorOp.STATUS]: op(NoParams, SupervisorStatus),
  [SupervisorOp.SHUTDOWN]: op(NoParams, z.object({ stopping: z.boolean() })),
  [SupervisorOp.PUBLISH]: op(PublishParams, PublishedPorts),
  [SupervisorOp.UNPUBLISH]: op(z.object({ owner: z.string().min(1) }), z.object({ removed: z.number().int() })),
  [SupervisorOp.PORTS]: op(NoParams, PublishedPorts),
  [SupervisorOp.EGRESS_RULES]: op(
    z.object({ allow: z.array(z.string()).default([]), deny: z.array(z.string()).default([]) }),
    z.object({ rules: Rules }),
  ),
};
