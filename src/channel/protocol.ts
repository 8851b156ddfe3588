// Owns the guest protocol's operations: their names and parameter/result schemas, validated on both
// sides of the channel (the host before sending, the agent on receipt).
import { z } from "zod";
import { Readiness, ServiceName, ServiceState, ShellSignal } from "../contract/interactive.js";
import { TreeEntry } from "../contract/tree.js";
import { op } from "./ops.js";

export { TreeEntry };

export const AGENT_NAME = "pyro-agent";

/** The environment every guest command starts from; callers add to it. */
export const BASE_ENV: Readonly<Record<string, string>> = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  HOME: "/root",
  LANG: "C.UTF-8",
  TERM: "dumb",
  USER: "root",
};

export const AgentOp = {
  INFO: "info",
  EXEC: "exec",
  /** {exec_id} -> {found}: kills a running exec's whole tree; the exec itself then answers, with
   * `cancelled: true` and whatever output came before the kill. */
  EXEC_CANCEL: "exec.cancel",
  /** {pem} -> {certificates, bundle}: adds CA certificates to the guest's trust store, and points
   * the usual variables (Node, Python requests, pip) at it for every process started after. */
  TRUST: "trust",
} as const;

/** The guest's system trust bundle (Debian's path), which pyro extends with extra CAs. */
export const GUEST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

export const AgentTrustParams = z.object({
  pem: z
    .string()
    .min(1)
    .max(4 * 1024 * 1024),
});
export const AgentTrustResult = z.object({ certificates: z.number().int(), bundle: z.string() });
export type AgentTrustResult = z.infer<typeof AgentTrustResult>;

export const AgentExecParams = z.object({
  argv: z.array(z.string()).min(1),
  cwd: z.string().startsWith("/"),
  env: z.record(z.string(), z.string()).default({}),
  timeout_ms: z.number().int().positive(),
  max_output_bytes: z.number().int().positive(),
  /** Names the exec for exec.cancel (cancelling the request itself kills it too, but then the
   * caller never hears how it ended). */
  exec_id: z.string().min(1).optional(),
});
export type AgentExecParams = z.input<typeof AgentExecParams>;

/** How long past an exec's own timeout the caller waits for the agent's answer (the kill and the
 * last output take a moment; an agent that never answers is given up on). */
export const EXEC_ANSWER_GRACE_MS = 30_000;

export const AgentExecCancelParams = z.object({ exec_id: z.string().min(1) });
export const AgentExecCancelResult = z.object({ found: z.boolean() });
export type AgentExecCancelResult = z.infer<typeof AgentExecCancelResult>;

export const AgentExecResult = z.object({
  exit_code: z.number().int(),
  signal: z.string().nullable(),
  timed_out: z.boolean(),
  /** Killed by exec.cancel or a cancelled request (absent from agents older than it). */
  cancelled: z.boolean().optional(),
  stdout_truncated: z.boolean(),
  stderr_truncated: z.boolean(),
  duration_ms: z.number().int(),
});
export type AgentExecResult = z.infer<typeof AgentExecResult>;

export const AgentInfoResult = z.object({
  agent_version: z.string(),
  kernel_release: z.string(),
  pid: z.number().int(),
  uptime_ms: z.number().int(),
});
export type AgentInfoResult = z.infer<typeof AgentInfoResult>;

// ---- VM guests: what a microVM's agent does once the host connects -----------------------------

export const GuestOp = {
  SETUP: "guest.setup",
} as const;

/** Sent right after the hello to an agent in a VM: a VM restored from a saved image wakes with the
 * image's clock, random state and identity, which must become this sandbox's own. */
export const AgentGuestSetupParams = z.object({
  /** Host entropy (base64) credited to the guest kernel's pool before its CRNG is rekeyed. */
  entropy: z.string().min(1),
  /** The host's wall clock when the request was sent. */
  time_ms: z.number().int().positive(),
  hostname: z.string().min(1).max(64),
  /** A fresh /etc/machine-id (32 hex digits). */
  machine_id: z.string().regex(/^[0-9a-f]{32}$/),
  /** Shared directories to mount (virtio-fs tags), waiting for hot-plugged devices to appear. */
  mounts: z.array(z.object({ tag: z.string().min(1), target: z.string().startsWith("/") })).default([]),
  mount_timeout_ms: z.number().int().positive().default(20_000),
  /** The nameserver /etc/resolv.conf names (the egress gateway's resolver under allowlist). */
  nameserver: z.ipv4().optional(),
});
export type AgentGuestSetupParams = z.input<typeof AgentGuestSetupParams>;

export const AgentGuestSetupResult = z.object({
  /** False when only a write to /dev/urandom (no CRNG rekey) was possible. */
  crng_reseeded: z.boolean(),
  mounted: z.array(z.string()),
  duration_ms: z.number().int(),
});
export type AgentGuestSetupResult = z.infer<typeof AgentGuestSetupResult>;

/** Turns the contract's command (string or argv) into argv: strings run through a login shell. */
export function commandToArgv(command: string | string[]): string[] {
  return typeof command === "string" ? ["/bin/sh", "-lc", command] : command;
}

// ---- shells: a PTY session per shell, output kept in an append-only buffer read by cursor --------

export const ShellOp = {
  OPEN: "shell.open",
  READ: "shell.read",
  WRITE: "shell.write",
  SIGNAL: "shell.signal",
  CLOSE: "shell.close",
  LIST: "shell.list",
} as const;

export const AgentShellOpenParams = z.object({
  cwd: z.string().startsWith("/"),
  cols: z.number().int().min(10).max(1000),
  rows: z.number().int().min(5).max(500),
  /** Added to BASE_ENV (TERM becomes xterm-256color for shells). */
  env: z.record(z.string(), z.string()).default({}),
  /** The program to run on the terminal; default an interactive bash (or sh when bash is absent). */
  argv: z.array(z.string()).min(1).optional(),
});
export type AgentShellOpenParams = z.input<typeof AgentShellOpenParams>;

export const AgentShellInfo = z.object({
  shell_id: z.string(),
  pid: z.number().int().nullable(),
  state: z.enum(["running", "exited", "closed"]),
  exit_code: z.number().int().nullable(),
  cwd: z.string(),
  cols: z.number().int(),
  rows: z.number().int(),
  started_at: z.string(),
});
export type AgentShellInfo = z.infer<typeof AgentShellInfo>;

export const AgentShellRef = z.object({ shell_id: z.string().min(1) });

export const AgentShellReadParams = z.object({
  shell_id: z.string().min(1),
  /** Absolute byte offset into the shell's output since it opened. */
  cursor: z.number().int().min(0),
  max_bytes: z.number().int().positive(),
  /** Return once no output has arrived for this long (from the later of the call and the last output). */
  wait_for_idle_ms: z.number().int().min(0).optional(),
  /** Upper bound on any waiting. */
  max_wait_ms: z.number().int().min(0).default(10_000),
  /** Also send up to this many retained bytes before `cursor` (redaction look-behind, terminal state). */
  history_max_bytes: z.number().int().min(0).default(0),
});
export type AgentShellReadParams = z.input<typeof AgentShellReadParams>;

/** The bytes come as DATA on stream STDOUT: history (from history_start to cursor), then output
 * (from cursor to next_cursor). */
export const AgentShellReadResult = AgentShellInfo.extend({
  history_start: z.number().int(),
  /** Where the returned output starts: the requested cursor, or the oldest retained byte if later. */
  cursor: z.number().int(),
  next_cursor: z.number().int(),
  /** The requested cursor was older than the buffer keeps: output between them is gone. */
  truncated: z.boolean(),
});
export type AgentShellReadResult = z.infer<typeof AgentShellReadResult>;

export const AgentShellWriteParams = z.object({ shell_id: z.string().min(1), input: z.string() });
export const AgentShellWriteResult = z.object({ shell_id: z.string(), bytes_written: z.number().int() });
export const AgentShellSignalParams = z.object({ shell_id: z.string().min(1), signal: ShellSignal });

// ---- services: named long-running processes with readiness probes ---------------------------------

export const ServiceOp = {
  START: "service.start",
  LIST: "service.list",
  STATUS: "service.status",
  LOGS: "service.logs",
  STOP: "service.stop",
} as const;

export const AgentServiceStartParams = z.object({
  name: ServiceName,
  argv: z.array(z.string()).min(1),
  cwd: z.string().startsWith("/"),
  env: z.record(z.string(), z.string()).default({}),
  readiness: Readiness.nullable().default(null),
  ready_timeout_ms: z.number().int().positive(),
  ready_interval_ms: z.number().int().positive(),
});
export type AgentServiceStartParams = z.input<typeof AgentServiceStartParams>;

export const AgentServiceInfo = z.object({
  service_name: z.string(),
  state: ServiceState,
  pid: z.number().int().nullable(),
  argv: z.array(z.string()),
  cwd: z.string(),
  started_at: z.string(),
  ready_at: z.string().nullable(),
  ended_at: z.string().nullable(),
  exit_code: z.number().int().nullable(),
  readiness: Readiness.nullable(),
  /** Why it failed (readiness timed out, exited before ready, could not start), else null. */
  reason: z.string().nullable(),
});
export type AgentServiceInfo = z.infer<typeof AgentServiceInfo>;

export const AgentServiceRef = z.object({ name: ServiceName });

export const AgentServiceLogsParams = z.object({
  name: ServiceName,
  /** Last N lines of each stream; omitted = everything retained. */
  tail_lines: z.number().int().positive().optional(),
});
/** stdout bytes come as DATA on stream STDOUT, stderr on STDERR. */
export const AgentServiceLogsResult = z.object({ service_name: z.string(), truncated: z.boolean() });

export const AgentServiceStopParams = z.object({
  name: ServiceName,
  /** TERM first, KILL after this long. */
  grace_ms: z.number().int().min(0).default(5_000),
});

// ---- files and archives under /workspace ---------------------------------------------------------

export const FileOp = {
  LIST: "file.list",
  READ: "file.read",
  WRITE: "file.write",
  DELETE: "file.delete",
  MKDIR: "file.mkdir",
  TREE: "tree.manifest",
  MERGE: "file.merge",
} as const;

export const TarOp = { EXPORT: "tar.export", IMPORT: "tar.import" } as const;

export const AgentFileListParams = z.object({
  path: z.string().optional(),
  recursive: z.boolean().default(false),
  max_entries: z.number().int().positive().default(10_000),
});
export const ArtifactType = z.enum(["file", "directory", "symlink"]);
export const TreeEntryInfo = z.object({
  /** The path as the caller knows it (a guest path), not necessarily where it was read. */
  path: z.string(),
  artifact_type: ArtifactType,
  size_bytes: z.number().int().nonnegative(),
  mode: z.number().int().nonnegative(),
  link_target: z.string().optional(),
});
export const AgentFileListResult = z.object({
  path: z.string(),
  recursive: z.boolean(),
  entries: z.array(TreeEntryInfo),
  truncated: z.boolean(),
});
export const AgentFileReadParams = z.object({ path: z.string().min(1), max_bytes: z.number().int().positive() });
/** The text itself comes as DATA on stream STDOUT (a reply is one frame, at most 1 MiB). */
export const AgentFileReadResult = z.object({
  path: z.string(),
  size_bytes: z.number().int().nonnegative(),
  truncated: z.boolean(),
});
/** The content is the request's input stream. */
export const AgentFileWriteParams = z.object({
  path: z.string().min(1),
  mode: z.number().int().min(0).max(0o7777).optional(),
});
export const AgentFileWriteResult = z.object({ path: z.string(), bytes_written: z.number().int().nonnegative() });
export const AgentFileDeleteParams = z.object({ path: z.string().min(1), recursive: z.boolean().default(false) });
export const AgentFileDeleteResult = z.object({ path: z.string(), deleted: z.boolean() });
export const AgentPathParams = z.object({ path: z.string().optional() });
export const AgentPathResult = z.object({ path: z.string() });

export const AgentTreeResult = z.object({ entries: z.array(TreeEntry) });

/** A sync push the host staged in /workspace (`staged`, a new directory at its top) while the sandbox
 * was frozen: the agent moves it into `dest`, as it does an archive it extracted itself. */
export const AgentFileMergeParams = z.object({
  staged: z.string().regex(/^\.pyro-push-[0-9a-f]+$/),
  dest: z.string().optional(),
});

/** The archive comes as DATA on stream STDOUT. */
export const AgentTarExportParams = z.object({ path: z.string().min(1) });
export const AgentTarExportResult = z.object({
  artifact_type: z.enum(["file", "directory"]),
  entry_count: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  /** What was left out (FIFOs, sockets, devices), in words; `skipped_more` counts the rest. */
  skipped: z.array(z.string()).optional(),
  skipped_more: z.number().int().nonnegative().optional(),
});
/** The archive is the request's input stream. */
export const AgentTarImportParams = z.object({ dest: z.string().optional() });
export const AgentTarImportResult = z.object({
  entry_count: z.number().int().nonnegative(),
  bytes_written: z.number().int().nonnegative(),
});

// ---- the table: every operation an agent serves, with what it takes and what it answers ----------

const NoParams = z.object({});

export const AGENT_OPS = {
  [AgentOp.INFO]: op(NoParams, AgentInfoResult),
  [AgentOp.EXEC]: op(AgentExecParams, AgentExecResult),
  [AgentOp.EXEC_CANCEL]: op(AgentExecCancelParams, AgentExecCancelResult),
  [AgentOp.TRUST]: op(AgentTrustParams, AgentTrustResult),
  [GuestOp.SETUP]: op(AgentGuestSetupParams, AgentGuestSetupResult),
  [ShellOp.OPEN]: op(AgentShellOpenParams, AgentShellInfo),
  [ShellOp.READ]: op(AgentShellReadParams, AgentShellReadResult),
  [ShellOp.WRITE]: op(AgentShellWriteParams, AgentShellWriteResult),
  [ShellOp.SIGNAL]: op(AgentShellSignalParams, AgentShellInfo),
  [ShellOp.CLOSE]: op(AgentShellRef, AgentShellInfo),
  [ShellOp.LIST]: op(NoParams, z.object({ shells: z.array(AgentShellInfo) })),
  [ServiceOp.START]: op(AgentServiceStartParams, AgentServiceInfo),
  [ServiceOp.LIST]: op(NoParams, z.object({ services: z.array(AgentServiceInfo) })),
  [ServiceOp.STATUS]: op(AgentServiceRef, AgentServiceInfo),
  [ServiceOp.LOGS]: op(AgentServiceLogsParams, AgentServiceLogsResult),
  [ServiceOp.STOP]: op(AgentServiceStopParams, AgentServiceInfo),
  [FileOp.LIST]: op(AgentFileListParams, AgentFileListResult),
  [FileOp.READ]: op(AgentFileReadParams, AgentFileReadResult),
  [FileOp.WRITE]: op(AgentFileWriteParams, AgentFileWriteResult),
  [FileOp.DELETE]: op(AgentFileDeleteParams, AgentFileDeleteResult),
  [FileOp.MKDIR]: op(AgentPathParams, AgentPathResult),
  [FileOp.TREE]: op(AgentPathParams, AgentTreeResult),
  [FileOp.MERGE]: op(AgentFileMergeParams, AgentPathResult),
  [TarOp.EXPORT]: op(AgentTarExportParams, AgentTarExportResult),
  [TarOp.IMPORT]: op(AgentTarImportParams, AgentTarImportResult),
} as const;

export type AgentOpName = keyof typeof AGENT_OPS;
/** What a caller passes (defaults not yet applied). */
export type AgentParams<K extends AgentOpName> = z.input<(typeof AGENT_OPS)[K]["params"]>;
/** What a handler receives (parsed, defaults applied). */
export type AgentParsedParams<K extends AgentOpName> = z.output<(typeof AGENT_OPS)[K]["params"]>;
export type AgentResult<K extends AgentOpName> = z.output<(typeof AGENT_OPS)[K]["result"]>;
