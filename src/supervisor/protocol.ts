// Owns the operations the supervisor answers itself on its socket; every other operation is
// proxied to the guest agent unchanged.
export const SupervisorOp = {
  STATUS: "supervisor.status",
  SHUTDOWN: "supervisor.shutdown",
} as const;

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
