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
  FILE_NOT_FOUND: "a file or directory named in the request does not exist (in the workspace, or on the host)",
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
  CANCELLED: "the caller cancelled the operation (Ctrl-C, an MCP cancellation, an aborted SDK call)",
  LOCK_TIMEOUT: "another pyro process held a lock (a workspace, an environment build) longer than this call waits",
  INTERNAL: "an unexpected internal failure",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** What to do about each code: `pyro explain CODE` prints it, and docs/errors.md lists them all. */
export const ERROR_FIXES: Record<ErrorCode, string> = {
  INVALID_ARGUMENT: "the message names the field or flag and what it accepts; `pyro help COMMAND` shows the flags",
  ENVIRONMENT_UNKNOWN: "`pyro env list` shows the names in the catalog",
  ENVIRONMENT_NOT_INSTALLED: "`pyro env pull ENV` (`pyro run` and `workspace create` pull on first use)",
  ENVIRONMENT_BUILD_FAILED:
    "the message has the build's last output; check the host's apt sources and disk space, then pull again",
  PACKAGE_ARCHIVE_UNREACHABLE:
    "mmdebstrap could not download from the host's apt sources: check `/etc/apt/sources.list*`, the proxy, and `apt-get update` on the host",
  HOST_REQUIREMENT_MISSING:
    "`npm run quickstart` installs what pyro needs, or `apt-get install` the package the message names; `pyro doctor` checks the host",
  ENGINE_UNAVAILABLE: "`pyro doctor` says why the engine cannot run here; use `--engine gvisor`",
  SANDBOX_START_FAILED:
    "the message includes the sandbox's last output; `pyro doctor` checks the host, `pyro doctor --repair` clears leftovers",
  SANDBOX_NOT_RUNNING: "the sandbox ended (the message says why when it is known); start the workspace again",
  AGENT_PROTOCOL_ERROR:
    "the agent in the sandbox is from another pyro version: `pyro env pull ENV` re-injects the current agent; recreate or restart the workspace",
  AGENT_TIMEOUT: "the guest is overloaded or stuck: retry with a longer timeout, or stop and start the workspace",
  CHANNEL_CLOSED:
    "the sandbox or its supervisor went away mid-call: `pyro workspace status WS` says why; start it again",
  FRAME_TOO_LARGE: "send the content in smaller pieces (a file write streams; an MCP message is capped by size)",
  PATH_OUTSIDE_WORKSPACE:
    "use a path inside /workspace (relative paths start there); links that lead out of it are not followed",
  FILE_NOT_FOUND:
    "check the path (relative paths start at /workspace); `pyro workspace file list WS DIR` shows what is there",
  WORKSPACE_NOT_FOUND: "`pyro workspace list` shows the ids and names",
  WORKSPACE_NAME_TAKEN: "choose another `--name`, or delete the workspace that has it",
  WORKSPACE_NOT_RUNNING:
    "`pyro workspace start WS` (its files are kept); for a half-created one, `pyro workspace delete WS` and create it again",
  WORKSPACE_RUNNING: "`pyro workspace stop WS` first, or use `pyro workspace file …` while it runs",
  SNAPSHOT_NOT_FOUND: "`pyro workspace snapshot list WS` shows the names",
  PATCH_DOES_NOT_APPLY:
    "the message names the file and hunk: read the file again, and make the patch against what is there now; nothing was changed",
  OUTPUT_EXISTS: "choose an output path that does not exist yet, or delete the old one",
  COMMAND_NOT_FOUND: "install the program in the workspace (e.g. `apt-get install`), or give its full path",
  SHELL_NOT_FOUND: "open a new one with `pyro workspace shell open WS` (a stop or reset ends every shell)",
  SERVICE_NOT_FOUND: "`pyro workspace service list WS` shows the services (a stop or reset ends them all)",
  SERVICE_EXISTS: "stop the running service first, or choose another name",
  PORT_UNAVAILABLE: "choose another `--publish HOST_PORT:GUEST_PORT`, or leave the host port out for a free one",
  SECRET_NOT_FOUND: "secrets are fixed at create: `--secret NAME=VALUE` or `--secret-file NAME=PATH`",
  NETWORK_POLICY_DENIED:
    "`pyro workspace policy check WS URL` says which rule decided; change the rules with `pyro workspace update WS --allow-host NAME`, or create the workspace with the policy it needs",
  HOST_PATH_NOT_ALLOWED:
    "use a path under the project directory, or start the server with `--allow-host-path DIR`, `--allow-any-host-path` or a larger `--max-source-mib`",
  CANCELLED: "nothing to fix: run it again when you want it",
  LOCK_TIMEOUT:
    "wait for the process the message names (a long snapshot, diff or reset) to finish, or stop it; a holder that died is taken over at once",
  INTERNAL: "a bug in pyro: report it with the command you ran and `pyro doctor --json`",
};

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
