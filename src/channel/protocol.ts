// Owns the guest protocol's operations: their names and parameter/result schemas, validated on both
// sides of the channel (the host before sending, the agent on receipt).
import { z } from "zod";

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
} as const;

export const AgentExecParams = z.object({
  argv: z.array(z.string()).min(1),
  cwd: z.string().startsWith("/"),
  env: z.record(z.string(), z.string()).default({}),
  timeout_ms: z.number().int().positive(),
  max_output_bytes: z.number().int().positive(),
});
export type AgentExecParams = z.input<typeof AgentExecParams>;

export const AgentExecResult = z.object({
  exit_code: z.number().int(),
  signal: z.string().nullable(),
  timed_out: z.boolean(),
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

/** Turns the contract's command (string or argv) into argv: strings run through a login shell. */
export function commandToArgv(command: string | string[]): string[] {
  return typeof command === "string" ? ["/bin/sh", "-lc", command] : command;
}
