// Owns the schemas of the workspace-core operations (CONTRACT.md payloads): requests and results
// of create, list, update, status, logs, summary, delete, stop, start, exec (and exec wait), sync
// push, files, patch, diff, export and reset.
import { posix } from "node:path";
import { z } from "zod";
import { DEFAULTS, LIMITS } from "./defaults.js";
import { checkRules, PRESETS } from "./egress-rules.js";
import {
  Command,
  DiskMib,
  EngineChoice,
  EngineName,
  ExecResult,
  MemMib,
  TimeoutSeconds,
  VcpuCount,
} from "./schemas.js";

/** One line of a workspace's network log: a decision the egress gateway made. */
export const NetworkLogEntry = z.object({
  time: z.string(),
  /** dns: a lookup; connect: a TCP connection; udp: datagrams (refused unless DNS to the resolver). */
  kind: z.enum(["dns", "connect", "udp"]),
  decision: z.enum(["allowed", "denied"]),
  name: z.string().optional(),
  /** The address the guest dialed (a gateway address, or a raw one it tried). */
  address: z.string().optional(),
  port: z.number().int().optional(),
  /** The upstream address the gateway dialed for an allowed connection. */
  upstream: z.string().optional(),
  rule: z.string().optional(),
  reason: z.string(),
  /** Names of the bound secrets swapped into the request (never their values). */
  credentials: z.array(z.string()).optional(),
  bytes_out: z.number().int().optional(),
  /** Refused UDP: how many datagrams of this flow arrived within a second (bytes in bytes_out). */
  datagrams: z.number().int().optional(),
  bytes_in: z.number().int().optional(),
  duration_ms: z.number().int().optional(),
});
export type NetworkLogEntry = z.infer<typeof NetworkLogEntry>;

/** True for /workspace, a path below it, or a relative path that stays below it once resolved. */
export function insideWorkspace(path: string): boolean {
  const root = DEFAULTS.guestWorkspace;
  const full = posix.normalize(path.startsWith("/") ? path : `${root}/${path}`);
  return full === root || full === `${root}/` || full.startsWith(`${root}/`);
}

export const WorkspaceRef = z
  .string()
  .min(1, "name a workspace by its id or its name")
  .describe("The workspace's id or its unique name.");

export const NetworkPolicy = z.enum(["off", "egress", "egress+published-ports", "allowlist"]);
export type NetworkPolicy = z.infer<typeof NetworkPolicy>;

const NETWORK_POLICY_TEXT =
  "off: loopback only; egress: outbound network; egress+published-ports: also services' ports on the host's " +
  "127.0.0.1; allowlist: only the names allow_hosts lets through pyro's resolver and gateway (deny_hosts wins).";

/** A list of network rules (HOST[:PORT], *.wildcards, IPv4 addresses or blocks), checked as given. */
function ruleList(which: "allow" | "deny", describe: string) {
  return z
    .array(z.string())
    .default([])
    .superRefine((rules, ctx) => {
      try {
        checkRules(rules, which);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
      }
    })
    .describe(describe);
}

const AllowHosts = ruleList(
  "allow",
  "Network policy allowlist: HOST[:PORT] rules the guest may reach (no port: 80 and 443; *.example.com for " +
    "subdomains; an IPv4 address or block lets allowed names resolve into private ranges).",
);
const DenyHosts = ruleList(
  "deny",
  "Network policy allowlist: HOST[:PORT] rules refused even when an allow rule matches.",
);
const AllowPresets = z
  .array(z.enum(Object.keys(PRESETS) as [string, ...string[]]))
  .default([])
  .describe(
    `Named rule lists added to allow_hosts as plain rules: ${Object.entries(PRESETS)
      .map(([name, rules]) => `${name} (${rules.join(", ")})`)
      .join("; ")}.`,
  );

export const NetworkRules = z.object({ allow: z.array(z.string()), deny: z.array(z.string()) });
export type NetworkRules = z.infer<typeof NetworkRules>;

// ---- secrets ---------------------------------------------------------------------------------------

export const SecretName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, "secret names are like environment variable names: letters, digits, '_'");

export const SecretInput = z
  .object({
    name: SecretName,
    value: z.string().min(1).optional().describe("The secret itself."),
    file_path: z.string().min(1).optional().describe("A host file whose content (UTF-8) is the secret."),
    hosts: z
      .array(z.string().min(1))
      .optional()
      .describe(
        "Bind the secret to these hosts (network policy allowlist): the guest only ever holds a placeholder, " +
          "which pyro's gateway replaces with the value in request headers to these hosts alone (over TLS it " +
          "ends with the workspace's own CA, which the guest trusts).",
      ),
  })
  .refine((s) => (s.value === undefined) !== (s.file_path === undefined), {
    message: "give each secret exactly one of value or file_path",
  });
export type SecretInput = z.input<typeof SecretInput>;

export const SecretMeta = z.object({
  name: z.string(),
  source_kind: z.enum(["literal", "file"]),
  hosts: z.array(z.string()).optional().describe("The hosts a bound secret is sent to; the guest holds placeholder."),
  placeholder: z.string().optional().describe("What the guest sees in place of a bound secret (secret_env gives it)."),
});
export type SecretMeta = z.infer<typeof SecretMeta>;

export const SecretEnv = z
  .record(
    SecretName,
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "environment variable names use letters, digits and '_'"),
  )
  .default({})
  .describe("Secrets to expose to this process: secret name -> environment variable name.");

/** What every workspace id looks like (`ws-` and 10 hex digits); no name may. */
export const WORKSPACE_ID_PATTERN = /^ws-[0-9a-f]{10}$/;

export const WorkspaceName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "use letters, digits, '.', '_' and '-', starting with a letter or digit")
  .refine((name) => !WORKSPACE_ID_PATTERN.test(name), {
    message: "a name may not look like a workspace id (ws- and 10 hex digits), which it would shadow",
  });

export const Labels = z.record(
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/, "label keys use letters, digits, '.', '_', '/' and '-'"),
  z.string().max(256),
);

export const WorkspaceState = z.enum(["running", "stopped", "expired", "failed"]);

export const WorkspaceSeed = z.object({
  mode: z.enum(["empty", "directory", "tar_archive"]),
  seed_path: z.string().nullable(),
  entry_count: z.number().int().optional(),
  skipped: z.array(z.string()).optional().describe("Seed entries left out, e.g. symlinks pointing outside the seed."),
});

export const WorkspaceInfo = z.object({
  workspace_id: z.string(),
  name: z.string().nullable(),
  labels: z.record(z.string(), z.string()),
  environment: z.string(),
  engine: EngineName,
  state: WorkspaceState,
  stopped_reason: z
    .string()
    .nullable()
    .describe("Why a workspace that is not running ended by itself (out of memory, killed, exited), if it did."),
  vcpu_count: z.number().int(),
  mem_mib: z.number().int(),
  process_limit: z
    .number()
    .int()
    .describe(
      "Tasks (processes and threads) the workspace's commands may hold at once; one more fork fails with EAGAIN.",
    ),
  disk_mib: z
    .number()
    .int()
    .nullable()
    .describe(
      "The workspace's disk in MiB: all its guest may write to the host (/workspace; on gvisor the root's changes too); past it, writes fail with ENOSPC. null: no limit (rootless, or a host without loop devices; doctor says which).",
    ),
  disk_used_mib: z
    .number()
    .int()
    .nullable()
    .describe("MiB in use on the workspace's disk (null when it has no limit)."),
  ttl_seconds: z.number().int(),
  network_policy: NetworkPolicy,
  network_rules: NetworkRules.nullable().describe(
    "Network policy allowlist's rules (null under other policies); workspace_update changes them live.",
  ),
  workspace_seed: WorkspaceSeed,
  trusted_ca: z
    .object({ certificates: z.number().int(), sources: z.array(z.string()) })
    .nullable()
    .describe("CA certificates added to the guest's trust store at create (ca_files, host_ca), or null."),
  host_proxy: z
    .object({ https: z.string().optional(), http: z.string().optional(), no_proxy: z.string().optional() })
    .nullable()
    .describe("The host's proxy settings this workspace uses (host_proxy), a password shown as ***, or null."),
  secrets: z.array(SecretMeta),
  created_at: z.string(),
  last_activity_at: z.string(),
  expires_at: z.string().nullable(),
  command_count: z.number().int(),
  reset_count: z.number().int(),
  service_count: z.number().int(),
  running_service_count: z.number().int(),
});
export type WorkspaceInfo = z.infer<typeof WorkspaceInfo>;

export const WorkspaceCreateParams = z.object({
  environment: z.string().default(DEFAULTS.environment),
  vcpu_count: VcpuCount.default(DEFAULTS.vcpuCount),
  mem_mib: MemMib.default(DEFAULTS.memMib),
  disk_mib: DiskMib.default(DEFAULTS.diskMib).describe(
    "Disk in MiB for all the guest writes to the host (/workspace; on gvisor the root's changes too); ENOSPC past it. At most the host file system's size.",
  ),
  ttl_seconds: z.number().int().min(0).default(DEFAULTS.ttlSeconds).describe("Idle seconds before expiry; 0 = never."),
  engine: EngineChoice.default(DEFAULTS.engine),
  seed_path: z.string().optional().describe("Host directory or .tar/.tar.gz/.tgz to copy into /workspace."),
  name: WorkspaceName.optional(),
  labels: Labels.default({}),
  network_policy: NetworkPolicy.default(DEFAULTS.networkPolicy).describe(NETWORK_POLICY_TEXT),
  allow_hosts: AllowHosts,
  deny_hosts: DenyHosts,
  allow_presets: AllowPresets,
  ca_files: z
    .array(z.string().min(1))
    .default([])
    .describe("Host PEM files of CA certificates the guest trusts too (system bundle, Node, Python, pip)."),
  host_ca: z
    .boolean()
    .default(false)
    .describe(
      "Also trust the host's whole system CA bundle (environments already carry the CAs the host added under /usr/local/share/ca-certificates).",
    ),
  host_proxy: z
    .boolean()
    .default(false)
    .describe(
      "Use the host's explicit proxy (pyro's HTTPS_PROXY, HTTP_PROXY, NO_PROXY): egress policies hand the variables to the guest's processes; allowlist's gateway connects through the proxy.",
    ),
  secrets: z
    .array(SecretInput)
    .default([])
    .describe("Secrets for this workspace, exposed per call through secret_env and redacted from all output."),
});
export type WorkspaceCreateParams = z.input<typeof WorkspaceCreateParams>;

export const WorkspaceListResult = z.object({
  count: z.number().int(),
  workspaces: z.array(WorkspaceInfo),
  damaged: z
    .array(z.object({ workspace_id: z.string(), problem: z.string() }))
    .optional()
    .describe("Workspaces whose record cannot be read (present only when there are any); pyro doctor says more."),
});
export type WorkspaceListResult = z.infer<typeof WorkspaceListResult>;

export const WorkspaceUpdateParams = z.object({
  workspace: WorkspaceRef,
  name: WorkspaceName.optional(),
  labels: Labels.default({}).describe("Labels to set (merged into the existing ones)."),
  clear_labels: z.array(z.string()).default([]).describe("Label keys to remove."),
  allow_hosts: AllowHosts.describe("Network policy allowlist: rules to add to the allow list; they apply at once."),
  deny_hosts: DenyHosts.describe("Network policy allowlist: rules to add to the deny list; they apply at once."),
  allow_presets: AllowPresets,
  remove_hosts: z
    .array(z.string())
    .default([])
    .describe("Network policy allowlist: rules to remove from both lists, as written; new connections stop at once."),
});
export type WorkspaceUpdateParams = z.input<typeof WorkspaceUpdateParams>;

export const WorkspaceRefParams = z.object({ workspace: WorkspaceRef });
export type WorkspaceRefParams = z.input<typeof WorkspaceRefParams>;

export const WaitSeconds = z.number().int().min(LIMITS.waitSeconds.min).max(LIMITS.waitSeconds.max);

export const WorkspaceExecParams = z.object({
  workspace: WorkspaceRef,
  command: Command.describe("A shell string (run by /bin/sh -lc) or an argv array."),
  cwd: z
    .string()
    .default(DEFAULTS.guestWorkspace)
    .refine(insideWorkspace, {
      message: `must be inside ${DEFAULTS.guestWorkspace}: a relative path starts there and may not leave it with ..; cd elsewhere within the command instead`,
    })
    .describe("Working directory, inside /workspace."),
  timeout_seconds: TimeoutSeconds.default(DEFAULTS.execTimeoutSeconds).describe(
    `Kill the command, and every process it started, after this many seconds (default ${DEFAULTS.execTimeoutSeconds}).`,
  ),
  wait_seconds: WaitSeconds.optional().describe(
    "Return after this many seconds even if the command has not ended: then running is true, the output so far " +
      "is returned, and the command keeps running until workspace_exec_wait collects the rest. Omitted: wait until it ends.",
  ),
  secret_env: SecretEnv,
});
export type WorkspaceExecParams = z.input<typeof WorkspaceExecParams>;

export const WorkspaceExecResult = ExecResult.extend({
  workspace_id: z.string(),
  sequence: z.number().int().describe("The command's number in the workspace's log; workspace_exec_wait takes it."),
  cwd: z.string(),
  exit_code: z
    .number()
    .int()
    .nullable()
    .describe("The command's exit code; 128+N when killed by signal N; 124 on timeout; null while it runs."),
  running: z.boolean().describe("Still running: call workspace_exec_wait with this sequence for the rest."),
  cancelled: z.boolean().describe("Cancelled: the command and every process it started were killed (exit_code 137)."),
  next_stdout_offset: z
    .number()
    .int()
    .describe("Characters of stdout so far: stdout_offset for a workspace_exec_wait that reads on from here."),
  next_stderr_offset: z.number().int().describe("Characters of stderr so far (see next_stdout_offset)."),
});
export type WorkspaceExecResult = z.infer<typeof WorkspaceExecResult>;

export const WorkspaceExecWaitParams = z.object({
  workspace: WorkspaceRef,
  sequence: z.number().int().positive().describe("The command's sequence, from workspace_exec."),
  wait_seconds: WaitSeconds.default(DEFAULTS.execWaitSeconds).describe(
    `Wait at most this long for the command to end (default ${DEFAULTS.execWaitSeconds}); it keeps running either way.`,
  ),
  stdout_offset: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe("Return stdout from this character on; default: where the previous reply for this command ended."),
  stderr_offset: z.number().int().min(0).optional().describe("As stdout_offset, for stderr."),
  cancel: z
    .boolean()
    .default(false)
    .describe("Kill the command and every process it started, then return its final result."),
});
export type WorkspaceExecWaitParams = z.input<typeof WorkspaceExecWaitParams>;

export const CommandLogEntry = z.object({
  sequence: z.number().int(),
  command: Command,
  cwd: z.string(),
  exit_code: z.number().int(),
  timed_out: z.boolean(),
  /** Written only when true; older entries lack it. */
  cancelled: z
    .boolean()
    .default(false)
    .describe("Killed (with every process it started) by a cancel or by its workspace stopping."),
  duration_ms: z.number().int(),
  started_at: z.string(),
  stdout_bytes: z.number().int(),
  stderr_bytes: z.number().int(),
});
export type CommandLogEntry = z.infer<typeof CommandLogEntry>;

export const WorkspaceLogsParams = z.object({
  workspace: WorkspaceRef,
  network: z
    .boolean()
    .default(false)
    .describe("Return the network log (each allowlist decision: name, port, rule, bytes) instead of commands."),
  limit: z.number().int().min(1).max(10_000).default(200).describe("Network log: the newest entries to return."),
});
export type WorkspaceLogsParams = z.input<typeof WorkspaceLogsParams>;

export const WorkspaceLogsResult = z.object({
  workspace_id: z.string(),
  count: z.number().int(),
  commands: z.array(CommandLogEntry),
  network: z.array(NetworkLogEntry).optional().describe("Present when the network log was asked for."),
});

export const PolicyCheckParams = z.object({
  workspace: WorkspaceRef,
  url: z.string().min(1).describe("What the guest would fetch: a URL (https://host/path) or HOST:PORT."),
});
export type PolicyCheckParams = z.input<typeof PolicyCheckParams>;

export const PolicyCheckResult = z.object({
  workspace_id: z.string(),
  network_policy: NetworkPolicy,
  name: z.string(),
  port: z.number().int(),
  allowed: z.boolean(),
  rule: z.string().nullable(),
  reason: z.string(),
});
export type PolicyCheckResult = z.infer<typeof PolicyCheckResult>;
export type WorkspaceLogsResult = z.infer<typeof WorkspaceLogsResult>;

export const WorkspaceDeleteResult = z.object({ workspace_id: z.string(), deleted: z.boolean() });
export type WorkspaceDeleteResult = z.infer<typeof WorkspaceDeleteResult>;

export const SyncPushParams = z.object({
  workspace: WorkspaceRef,
  source_path: z.string().min(1).describe("Host directory or .tar/.tar.gz/.tgz to copy in."),
  dest: z.string().default(DEFAULTS.guestWorkspace).describe("Destination inside /workspace."),
});
export type SyncPushParams = z.input<typeof SyncPushParams>;

export const SyncPushResult = z.object({
  workspace_id: z.string(),
  source_path: z.string(),
  dest: z.string(),
  entry_count: z.number().int(),
  bytes_written: z.number().int(),
  skipped: z.array(z.string()),
});
export type SyncPushResult = z.infer<typeof SyncPushResult>;

export const ExportParams = z.object({
  workspace: WorkspaceRef,
  path: z.string().min(1).describe("File or directory inside /workspace."),
  output_path: z.string().min(1).describe("Host path to write; must not exist yet."),
});
export type ExportParams = z.input<typeof ExportParams>;

export const ExportResult = z.object({
  workspace_id: z.string(),
  workspace_path: z.string(),
  output_path: z.string(),
  artifact_type: z.enum(["file", "directory"]),
  entry_count: z.number().int(),
  bytes_written: z.number().int(),
  skipped: z
    .array(z.string())
    .describe(
      "Entries left out, each with why: device files, FIFOs, sockets, and links that point outside the copy (at most 100 named; then a count).",
    ),
  modes_cleared: z
    .array(z.string())
    .describe(
      "Files written without their setuid, setgid or sticky bit, which the guest had set: nothing exported runs with raised rights on the host (at most 100 named; then a count).",
    ),
});
export type ExportResult = z.infer<typeof ExportResult>;

export const ResetParams = z.object({
  workspace: WorkspaceRef,
  snapshot: z
    .string()
    .default("baseline")
    .describe('A snapshot name, or "baseline" (the state at create, the default).'),
});
export type ResetParams = z.input<typeof ResetParams>;

export const ResetResult = z.object({ workspace_id: z.string(), snapshot: z.string(), reset_count: z.number().int() });
export type ResetResult = z.infer<typeof ResetResult>;

export const WorkspaceSummary = z.object({
  workspace_id: z.string(),
  name: z.string().nullable(),
  state: WorkspaceState,
  commands: z.object({
    total: z.number().int(),
    failed: z.number().int(),
    last: z.array(CommandLogEntry),
  }),
  changes: z.object({
    changed: z.boolean(),
    total: z.number().int(),
    added: z.number().int(),
    modified: z.number().int(),
    deleted: z.number().int(),
    type_changed: z.number().int(),
    files: z.array(z.object({ path: z.string(), status: z.string() })),
    ignored: z
      .number()
      .int()
      .optional()
      .describe(
        "Changed paths left out, as workspace_diff leaves them out by default: ignored by .gitignore or .git/info/exclude, or inside .git/.",
      ),
  }),
  exports: z.array(z.object({ workspace_path: z.string(), output_path: z.string(), at: z.string() })),
  reset_count: z.number().int(),
});
export type WorkspaceSummary = z.infer<typeof WorkspaceSummary>;

export const ArtifactType = z.enum(["file", "directory", "symlink"]);

export const FileListParams = z.object({
  workspace: WorkspaceRef,
  path: z.string().default(DEFAULTS.guestWorkspace).describe("Directory or file inside /workspace."),
  recursive: z.boolean().default(false),
});
export type FileListParams = z.input<typeof FileListParams>;

export const FileListResult = z.object({
  workspace_id: z.string(),
  path: z.string(),
  recursive: z.boolean(),
  entries: z.array(
    z.object({
      path: z.string(),
      artifact_type: ArtifactType,
      size_bytes: z.number().int(),
      link_target: z.string().optional(),
    }),
  ),
  truncated: z.boolean(),
});
export type FileListResult = z.infer<typeof FileListResult>;

export const FileReadParams = z.object({
  workspace: WorkspaceRef,
  path: z.string().min(1).describe("File inside /workspace."),
  max_bytes: z
    .number()
    .int()
    .positive()
    .max(16 * 1024 * 1024)
    .default(DEFAULTS.readMaxBytes),
});
export type FileReadParams = z.input<typeof FileReadParams>;

export const FileReadResult = z.object({
  workspace_id: z.string(),
  path: z.string(),
  content: z.string(),
  size_bytes: z.number().int(),
  truncated: z.boolean(),
});
export type FileReadResult = z.infer<typeof FileReadResult>;

export const FileWriteParams = z.object({
  workspace: WorkspaceRef,
  path: z.string().min(1).describe("File inside /workspace; parent directories are created."),
  text: z
    .string()
    .max(16 * 1024 * 1024)
    .describe("The whole new content (UTF-8 text)."),
});
export type FileWriteParams = z.input<typeof FileWriteParams>;

export const FileWriteResult = z.object({
  workspace_id: z.string(),
  path: z.string(),
  bytes_written: z.number().int(),
});
export type FileWriteResult = z.infer<typeof FileWriteResult>;

export const PatchApplyParams = z.object({
  workspace: WorkspaceRef,
  patch: z.string().min(1).describe("A unified diff (git diff or diff -u format), paths relative to /workspace."),
});
export type PatchApplyParams = z.input<typeof PatchApplyParams>;

export const PatchApplyResult = z.object({
  workspace_id: z.string(),
  changed: z.boolean(),
  files: z.array(z.object({ path: z.string(), status: z.enum(["added", "modified", "deleted"]) })),
});
export type PatchApplyResult = z.infer<typeof PatchApplyResult>;

// A diff path filter: a pattern in .gitignore syntax, matched against paths relative to /workspace
// (`src/`, `/README.md`, `*.min.js`, `docs/**/*.md`, `!keep.c`), so that one syntax covers both the
// repository's own rules and the caller's. `/workspace/src` and `./src` are read as `/src`.
export const DiffPattern = z
  .string()
  .min(1, "give a path or a pattern such as src/ or *.c")
  .max(4096)
  .refine((p) => p.trim() !== "" && p !== "!" && !p.startsWith("#"), {
    message: "a blank pattern or one starting with # matches nothing (write \\# for a name that starts with #)",
  });

export const WorkspaceDiffParams = z.object({
  workspace: WorkspaceRef,
  // Optional rather than defaulted so that a request says only what its caller said.
  include_ignored: z
    .boolean()
    .optional()
    .describe(
      "Also show paths that .gitignore files (at any depth) or .git/info/exclude ignore, and the contents of .git/ itself; default false.",
    ),
  paths: z
    .array(DiffPattern)
    .optional()
    .describe(
      "Show only changes under these paths: .gitignore-syntax patterns relative to /workspace, e.g. `src/` (a directory named src at any depth), `/src` (the top-level one), `*.c`, `lib/**/*.py`. Default: everything.",
    ),
  exclude: z
    .array(DiffPattern)
    .optional()
    .describe("Leave out changes matching these patterns (same syntax as paths), e.g. `*.min.js`, `/vendor`."),
});
export type WorkspaceDiffParams = z.input<typeof WorkspaceDiffParams>;

export const DiffFile = z.object({
  path: z.string(),
  status: z.enum(["added", "modified", "deleted", "type_changed"]),
  binary: z.boolean().describe("True when either side is not UTF-8 text; binary files are not in the patch."),
});
export type DiffFile = z.infer<typeof DiffFile>;

export const DiffOmission = z.object({
  path: z.string(),
  reason: z
    .enum(["size_cap", "too_large"])
    .describe(
      "size_cap: the patch was full (narrow the diff with paths or exclude to get this file's patch); too_large: this file's change alone does not fit in a patch (over 1 MiB of patch text, or a side over 4 MiB) — export or read the file instead.",
    ),
});
export type DiffOmission = z.infer<typeof DiffOmission>;

export const DiffResult = z.object({
  changed: z
    .boolean()
    .describe(
      "False when nothing shown changed since the baseline taken at create (paths left out as ignored or by the paths/exclude filters do not count).",
    ),
  summary: z.object({
    total: z.number().int(),
    added: z.number().int(),
    modified: z.number().int(),
    deleted: z.number().int(),
    type_changed: z.number().int(),
    binary: z.number().int(),
  }),
  patch: z
    .string()
    .describe("Unified diff of the text changes with git-style headers; apply with `git apply` or `patch -p1`."),
  files: z
    .array(DiffFile)
    .describe("Every changed path shown, sorted, including binary files, empty directories and patch_omitted files."),
  patch_truncated: z
    .boolean()
    .describe("True when patch_omitted is not empty: the patch is missing some text changes listed in files."),
  // Optional so that results of earlier versions still parse; this version always sets both.
  patch_omitted: z
    .array(DiffOmission)
    .optional()
    .describe(
      "Every changed text file (or symlink) whose change is not in the patch because of the size cap, sorted by path. Binary files are never in the patch and are marked binary in files instead; a file listed here may not have been read, so files shows it as binary false.",
    ),
  ignored: z
    .number()
    .int()
    .optional()
    .describe(
      "How many changed paths were left out because .gitignore files or .git/info/exclude ignore them or they are inside .git/ (0 with include_ignored).",
    ),
});
export type DiffResult = z.infer<typeof DiffResult>;

export const WorkspaceDiffResult = DiffResult.extend({ workspace_id: z.string() });
export type WorkspaceDiffResult = z.infer<typeof WorkspaceDiffResult>;

// ---- snapshots and disk tools ----------------------------------------------------------------------

export const SnapshotName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "use letters, digits, '.', '_' and '-', starting with a letter or digit")
  .refine((name) => name !== "baseline", { message: '"baseline" is reserved for the state at create' });

export const SnapshotParams = z.object({ workspace: WorkspaceRef, snapshot_name: SnapshotName });
export type SnapshotParams = z.input<typeof SnapshotParams>;

export const SnapshotInfo = z.object({
  workspace_id: z.string(),
  snapshot_name: z.string(),
  created_at: z.string(),
  size_bytes: z.number().int().describe("Bytes of file content the snapshot holds."),
  file_count: z.number().int(),
  shared_bytes: z.number().int().describe("Of size_bytes, how much is shared with other snapshots or the baseline."),
});
export type SnapshotInfo = z.infer<typeof SnapshotInfo>;

export const SnapshotListResult = z.object({
  workspace_id: z.string(),
  count: z.number().int(),
  snapshots: z.array(SnapshotInfo),
});
export type SnapshotListResult = z.infer<typeof SnapshotListResult>;

export const SnapshotDeleteResult = z.object({
  workspace_id: z.string(),
  snapshot_name: z.string(),
  deleted: z.boolean(),
});
export type SnapshotDeleteResult = z.infer<typeof SnapshotDeleteResult>;

export const DiskExportParams = z.object({
  workspace: WorkspaceRef,
  output_path: z.string().min(1).describe("Host path for the raw ext4 image; must not exist yet."),
});
export type DiskExportParams = z.input<typeof DiskExportParams>;

export const DiskExportResult = z.object({
  workspace_id: z.string(),
  output_path: z.string(),
  size_bytes: z.number().int(),
  entry_count: z.number().int(),
});
export type DiskExportResult = z.infer<typeof DiskExportResult>;
