// Owns the operations the supervisor answers itself on its socket; every other operation is
// proxied to the guest agent unchanged.
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

/** A host port forwarded into the sandbox on behalf of an owner (a service name). */
export interface PublishedPort {
  owner: string;
  host: "127.0.0.1";
  host_port: number;
  guest_port: number;
}

/** What the supervisor process reads at start (written by the launcher into its run dir). */
export const SUPERVISOR_CONFIG_FILE = "supervisor.json";
export const SUPERVISOR_STATE_FILE = "supervisor.state.json";
export const SUPERVISOR_LOG_FILE = "supervisor.log";
export const SUPERVISOR_SOCKET_FILE = "supervisor.sock";

/** The supervisor's record of itself, so any process can find it and tell whether it is alive. */
export interface SupervisorStateRecord {
  pid: number;
  id: string;
  socket: string;
  state: "starting" | "ready" | "stopped" | "failed";
  updated_at: string;
  error?: { code: string; message: string };
}

/** In the run dir: why the sandbox of the last run ended when nobody asked it to (one line). Read
 * by the workspace service to say why a workspace is not running; removed at the next start. */
export const SANDBOX_EXIT_FILE = "sandbox-exit.txt";
