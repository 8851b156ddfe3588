// Owns the request/result schemas of every public operation. The CLI, SDK, MCP server and guest
// protocol derive their types and validation from these; nothing else declares a payload shape.
import { z } from "zod";
import { DEFAULTS, LIMITS } from "./defaults.js";

export const EngineName = z.enum(["gvisor", "qemu", "firecracker"]);
export type EngineName = z.infer<typeof EngineName>;
export const EngineChoice = z.enum(["auto", "gvisor", "qemu", "firecracker"]);
export type EngineChoice = z.infer<typeof EngineChoice>;

/** A string runs through `/bin/sh -lc`; an array runs as argv without a shell. */
export const Command = z.union([
  z.string().min(1, "command must not be empty"),
  z.array(z.string()).min(1, "command must have at least one word"),
]);
export type Command = z.infer<typeof Command>;

export const VcpuCount = z.number().int().min(LIMITS.vcpuCount.min).max(LIMITS.vcpuCount.max);
export const MemMib = z.number().int().min(LIMITS.memMib.min).max(LIMITS.memMib.max);
export const DiskMib = z.number().int().min(LIMITS.diskMib.min).max(LIMITS.diskMib.max);
export const TimeoutSeconds = z.number().int().min(LIMITS.timeoutSeconds.min).max(LIMITS.timeoutSeconds.max);

export const ExecResult = z.object({
  stdout: z.string(),
  stderr: z.string(),
  exit_code: z.number().int().describe("The command's exit code; 128+N when killed by signal N; 124 on timeout."),
  duration_ms: z.number().int(),
  timed_out: z.boolean(),
  stdout_truncated: z.boolean(),
  stderr_truncated: z.boolean(),
  execution_mode: EngineName.describe("The engine that ran the command."),
});
export type ExecResult = z.infer<typeof ExecResult>;

export const RunParams = z.object({
  environment: z.string().default(DEFAULTS.environment).describe("Environment name, e.g. debian:12."),
  command: Command.describe("A shell string (run by /bin/sh -lc) or an argv array."),
  vcpu_count: VcpuCount.default(DEFAULTS.vcpuCount),
  mem_mib: MemMib.default(DEFAULTS.memMib),
  timeout_seconds: TimeoutSeconds.default(DEFAULTS.timeoutSeconds).describe(
    "Kill the command's whole process group after this many seconds.",
  ),
  network: z.boolean().default(false).describe("Give the sandbox outbound network access (never the host's loopback)."),
  engine: EngineChoice.default(DEFAULTS.engine),
});
export type RunParams = z.input<typeof RunParams>;
export type RunRequest = z.output<typeof RunParams>;

export const RunResult = ExecResult.extend({
  environment: z.string(),
});
export type RunResult = z.infer<typeof RunResult>;

export const EnvironmentName = z.string().min(1);

export const EnvironmentEntry = z.object({
  name: z.string(),
  description: z.string(),
  installed: z.boolean(),
  version: z.string(),
  packages: z.array(z.string()),
});
export type EnvironmentEntry = z.infer<typeof EnvironmentEntry>;

export const EnvironmentList = z.object({
  catalog_version: z.string(),
  count: z.number().int(),
  environments: z.array(EnvironmentEntry),
});
export type EnvironmentList = z.infer<typeof EnvironmentList>;

export const EnvironmentManifest = z.object({
  name: z.string(),
  version: z.string(),
  suite: z.string(),
  packages: z.array(z.string()),
  created_at: z.string(),
  agent_version: z.string(),
  agent_digest: z.string(),
  rootfs_digest: z.string(),
  rootfs_size_bytes: z.number().int(),
  rootfs_file_count: z.number().int(),
  build_seconds: z.number(),
  /** What engines built from the environment at pull time (the qemu engine's kernel, initramfs and
   * root image), by engine name. */
  engines: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
});
export type EnvironmentManifest = z.infer<typeof EnvironmentManifest>;

export const EnvironmentInspect = EnvironmentEntry.extend({
  path: z.string().nullable(),
  manifest: EnvironmentManifest.nullable(),
  agent_current: z.boolean().describe("Whether the injected agent matches this pyro's agent."),
});
export type EnvironmentInspect = z.infer<typeof EnvironmentInspect>;

export const EnvironmentPullResult = EnvironmentInspect.extend({
  pulled: z.boolean().describe("False when the environment was already installed and valid."),
  duration_ms: z.number().int(),
});
export type EnvironmentPullResult = z.infer<typeof EnvironmentPullResult>;

export const EnvironmentPruneResult = z.object({
  removed: z.array(z.string()),
  freed_bytes: z.number().int(),
});
export type EnvironmentPruneResult = z.infer<typeof EnvironmentPruneResult>;

export const DoctorCheck = z.object({
  name: z.string(),
  ok: z.boolean(),
  detail: z.string(),
  fix: z.string().optional(),
});
export const DailyLoop = z.object({
  environment: z.string(),
  state: z
    .enum(["warm", "cold", "stale"])
    .describe(
      "warm: prepared with this environment build and agent; cold: never prepared (or not installed); stale: prepared with another build, agent or pyro.",
    ),
  prepared_at: z.string().nullable(),
  detail: z.string(),
});
export type DailyLoop = z.infer<typeof DailyLoop>;

export const PrepareParams = z.object({ environment: z.string().default(DEFAULTS.environment) });
export type PrepareParams = z.input<typeof PrepareParams>;

export const PrepareResult = z.object({
  environment: z.string(),
  engine: EngineName,
  steps: z.array(z.object({ step: z.string(), duration_ms: z.number().int() })),
  total_ms: z.number().int(),
  daily_loop: DailyLoop,
});
export type PrepareResult = z.infer<typeof PrepareResult>;

export const DoctorResult = z.object({
  ok: z.boolean(),
  daily_loop: DailyLoop.optional().describe("With --environment: whether pyro prepare has warmed it."),
  platform: z.string(),
  pyro_version: z.string(),
  engine: z.object({
    selected: EngineName.nullable(),
    reason: z.string(),
    engines: z.array(z.object({ name: EngineName, available: z.boolean(), detail: z.string() })),
  }),
  state_dir: z.string(),
  cache_dir: z.string(),
  checks: z.array(DoctorCheck),
  environments: z.array(z.object({ name: z.string(), installed: z.boolean() })),
  leftovers: z.object({ found: z.number().int(), repaired: z.number().int(), items: z.array(z.string()) }),
});
export type DoctorResult = z.infer<typeof DoctorResult>;
