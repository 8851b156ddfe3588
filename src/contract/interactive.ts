// Owns the schemas of the interactive workspace-full operations (CONTRACT.md payloads): PTY shells,
// and services with readiness probes and published ports.
import { z } from "zod";
import { DEFAULTS } from "./defaults.js";
import { Command, EngineName } from "./schemas.js";
import { SecretEnv, WorkspaceRef } from "./workspace.js";

// ---- what the guest protocol shares with these payloads ----------------------------------------

export const ShellSignal = z.enum(["INT", "TERM", "HUP", "KILL"]);
export type ShellSignal = z.infer<typeof ShellSignal>;

export const ServiceName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "use letters, digits, '.', '_' and '-', starting with a letter or digit");

export const Readiness = z.discriminatedUnion("type", [
  z.object({ type: z.literal("file"), path: z.string().min(1) }),
  z.object({ type: z.literal("tcp"), host: z.string().min(1), port: z.number().int().min(1).max(65_535) }),
  z.object({ type: z.literal("http"), url: z.string().url() }),
  z.object({ type: z.literal("command"), command: z.union([z.string().min(1), z.array(z.string()).min(1)]) }),
]);
export type Readiness = z.infer<typeof Readiness>;

export const ServiceState = z.enum(["starting", "running", "ready", "exited", "failed", "stopped"]);

// ---- shells ----------------------------------------------------------------------------------------

export const ShellOpenParams = z.object({
  workspace: WorkspaceRef,
  cwd: z.string().default(DEFAULTS.guestWorkspace).describe("Working directory, inside /workspace."),
  cols: z.number().int().min(10).max(1000).default(DEFAULTS.shellCols),
  rows: z.number().int().min(5).max(500).default(DEFAULTS.shellRows),
  secret_env: SecretEnv,
});
export type ShellOpenParams = z.input<typeof ShellOpenParams>;

export const ShellInfo = z.object({
  workspace_id: z.string(),
  shell_id: z.string(),
  state: z.enum(["running", "exited", "closed"]),
  exit_code: z.number().int().nullable(),
  cwd: z.string(),
  cols: z.number().int(),
  rows: z.number().int(),
  started_at: z.string(),
  execution_mode: EngineName,
});
export type ShellInfo = z.infer<typeof ShellInfo>;

export const ShellRefParams = z.object({ workspace: WorkspaceRef, shell_id: z.string().min(1) });
export type ShellRefParams = z.input<typeof ShellRefParams>;

export const ShellReadParams = ShellRefParams.extend({
  cursor: z.number().int().min(0).default(0).describe("Where to read from: 0, or the previous read's next_cursor."),
  max_chars: z.number().int().positive().max(1_048_576).default(DEFAULTS.readMaxBytes),
  plain: z
    .boolean()
    .default(false)
    .describe("Render the output as a person would see it on the terminal (no escape sequences)."),
  wait_for_idle_ms: z
    .number()
    .int()
    .min(1)
    .max(60_000)
    .optional()
    .describe("Return once the shell has printed nothing for this long (bounded by max_wait_ms)."),
  max_wait_ms: z.number().int().min(0).max(120_000).default(10_000),
});
export type ShellReadParams = z.input<typeof ShellReadParams>;

export const ShellReadResult = ShellInfo.extend({
  output: z.string(),
  cursor: z.number().int(),
  next_cursor: z.number().int(),
  truncated: z.boolean().describe("True when output between the requested cursor and `cursor` is no longer kept."),
  plain: z.boolean(),
});
export type ShellReadResult = z.infer<typeof ShellReadResult>;

export const ShellWriteParams = ShellRefParams.extend({
  input: z.string().max(1_048_576).describe("Text to type into the shell."),
  append_newline: z.boolean().default(true).describe("Press Enter after the input (default true)."),
});
export type ShellWriteParams = z.input<typeof ShellWriteParams>;

export const ShellWriteResult = z.object({
  workspace_id: z.string(),
  shell_id: z.string(),
  bytes_written: z.number().int(),
});
export type ShellWriteResult = z.infer<typeof ShellWriteResult>;

export const ShellSignalParams = ShellRefParams.extend({ signal: ShellSignal.default("INT") });
export type ShellSignalParams = z.input<typeof ShellSignalParams>;

// ---- services --------------------------------------------------------------------------------------

export const PublishSpec = z.object({
  host_port: z.number().int().min(0).max(65_535).default(0).describe("Host port on 127.0.0.1; 0 picks a free one."),
  guest_port: z.number().int().min(1).max(65_535),
});
export type PublishSpec = z.input<typeof PublishSpec>;

export const PublishedPort = z.object({ host: z.string(), host_port: z.number().int(), guest_port: z.number().int() });

export const ServiceStartParams = z.object({
  workspace: WorkspaceRef,
  service_name: ServiceName,
  command: Command.describe("A shell string (run by /bin/sh -lc) or an argv array."),
  cwd: z.string().default(DEFAULTS.guestWorkspace).describe("Working directory, inside /workspace."),
  readiness: Readiness.optional().describe(
    "How to tell the service is ready: {type: file, path} | {type: tcp, host, port} | {type: http, url} | {type: command, command}.",
  ),
  ready_timeout_seconds: z.number().int().min(1).max(3600).default(DEFAULTS.readinessTimeoutSeconds),
  ready_interval_ms: z.number().int().min(10).max(60_000).default(DEFAULTS.readinessIntervalMs),
  secret_env: SecretEnv,
  publish: z
    .array(PublishSpec)
    .default([])
    .describe("Guest ports to publish on the host's 127.0.0.1 (network policy egress+published-ports)."),
});
export type ServiceStartParams = z.input<typeof ServiceStartParams>;

export const ServiceInfo = z.object({
  workspace_id: z.string(),
  service_name: z.string(),
  state: ServiceState,
  pid: z.number().int().nullable(),
  cwd: z.string(),
  started_at: z.string(),
  ready_at: z.string().nullable(),
  ended_at: z.string().nullable(),
  exit_code: z.number().int().nullable(),
  readiness: Readiness.nullable(),
  reason: z.string().nullable().describe("Why the service failed, else null."),
  published_ports: z.array(PublishedPort),
  log_tail: z
    .object({ stdout: z.string(), stderr: z.string() })
    .optional()
    .describe("The last log lines, when the service failed."),
});
export type ServiceInfo = z.infer<typeof ServiceInfo>;

export const ServiceRefParams = z.object({ workspace: WorkspaceRef, service_name: ServiceName });
export type ServiceRefParams = z.input<typeof ServiceRefParams>;

export const ServiceListResult = z.object({
  workspace_id: z.string(),
  count: z.number().int(),
  running_count: z.number().int(),
  services: z.array(ServiceInfo),
});
export type ServiceListResult = z.infer<typeof ServiceListResult>;

export const ServiceLogsParams = ServiceRefParams.extend({
  tail_lines: z.number().int().positive().max(100_000).default(200),
  all: z.boolean().default(false).describe("Everything kept (the last 1 MiB of each stream) instead of a tail."),
});
export type ServiceLogsParams = z.input<typeof ServiceLogsParams>;

export const ServiceLogsResult = z.object({
  workspace_id: z.string(),
  service_name: z.string(),
  stdout: z.string(),
  stderr: z.string(),
  truncated: z.boolean(),
});
export type ServiceLogsResult = z.infer<typeof ServiceLogsResult>;

export const ServiceStopParams = ServiceRefParams.extend({
  grace_seconds: z.number().int().min(0).max(300).default(5).describe("Seconds between TERM and KILL."),
});
export type ServiceStopParams = z.input<typeof ServiceStopParams>;
