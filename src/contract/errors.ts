// Owns the error family every face (CLI, SDK, MCP, guest protocol) reports: one class, a stable
// string code, and a message that tells the user what to do next.

export const ERROR_CODES = {
  INVALID_ARGUMENT: "a request field is missing, malformed or out of range",
  ENVIRONMENT_UNKNOWN: "the environment name is not in the catalog",
  ENVIRONMENT_NOT_INSTALLED: "the environment has not been pulled",
  ENVIRONMENT_BUILD_FAILED: "building an environment failed",
  PACKAGE_ARCHIVE_UNREACHABLE: "the Debian package archive could not be reached",
  HOST_REQUIREMENT_MISSING: "a host program or capability pyro needs is missing",
  ENGINE_UNAVAILABLE: "the requested engine cannot run on this host",
  SANDBOX_START_FAILED: "the sandbox did not come up",
  SANDBOX_NOT_RUNNING: "the sandbox is not running",
  AGENT_PROTOCOL_ERROR: "the guest agent sent something the host does not understand",
  AGENT_TIMEOUT: "the guest agent did not answer before its deadline",
  CHANNEL_CLOSED: "the connection to the sandbox closed",
  FRAME_TOO_LARGE: "a protocol frame exceeded the maximum frame size",
  PATH_OUTSIDE_WORKSPACE: "a path resolves outside /workspace",
  WORKSPACE_NOT_FOUND: "no workspace has that id or name",
  WORKSPACE_NAME_TAKEN: "another workspace already has that name",
  WORKSPACE_NOT_RUNNING: "the workspace's sandbox is not running",
  WORKSPACE_RUNNING: "the operation needs the workspace stopped",
  SNAPSHOT_NOT_FOUND: "no snapshot with that name in the workspace",
  PATCH_DOES_NOT_APPLY: "a patch does not apply to the workspace's files",
  OUTPUT_EXISTS: "an export's output path already exists",
  COMMAND_NOT_FOUND: "the command to run does not exist in the sandbox",
  SHELL_NOT_FOUND: "no shell with that id in the workspace",
  SERVICE_NOT_FOUND: "no service with that name in the workspace",
  SERVICE_EXISTS: "a service with that name is already running",
  PORT_UNAVAILABLE: "a host port to publish is taken or not allowed",
  SECRET_NOT_FOUND: "a secret named in secret_env was not given at create",
  NETWORK_POLICY_DENIED: "the workspace's network policy does not allow this",
  HOST_PATH_NOT_ALLOWED:
    "an MCP caller named a host path outside the server's allowed directories, or a source over its size cap",
  LOCK_TIMEOUT: "another pyro process held a lock (a workspace, an environment build) longer than this call waits",
  INTERNAL: "an unexpected internal failure",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class PyroError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = "PyroError";
    this.code = code;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && value in ERROR_CODES;
}

/** Turns anything thrown into a PyroError without losing the original message. */
export function toPyroError(err: unknown): PyroError {
  if (err instanceof PyroError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new PyroError("INTERNAL", `${message} (this is a bug in pyro; please report it with the command you ran)`);
}
