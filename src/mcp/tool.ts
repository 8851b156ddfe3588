// Owns the shape of one MCP tool: its name, model-facing text, the contract schemas it takes and
// returns, honest annotations, and the call into the manager. A new tool is one file in tools/
// exporting `defineTool({...})` plus its name in profiles.ts.
import type { ToolAnnotations } from "@modelcontextprotocol/sdk/types.js";
import type { z } from "zod";
import { parseParams } from "../contract/parse.js";
import { ENVIRONMENT_BUILD_TIMEOUT_MS } from "../environments/catalog.js";
import type { ManagerApi, ProgressReporter } from "../sdk/manager.js";
import type { HostPaths } from "./host-paths.js";
import type { ToolName } from "./profiles.js";
import type { ProjectSource } from "./project.js";

export interface ToolContext {
  manager: ManagerApi;
  /** Aborted when the client cancels the call or its connection ends (stdio closed, an HTTP session
   * deleted); over HTTP a dropped stream is not a cancel: the call goes on and its result can be resumed. */
  signal: AbortSignal;
  /** Forwards phases to the client: progress notifications when it sent a progress token, info log
   * messages otherwise, each repeated while the phase lasts (see progressFor in server.ts). */
  progress: ProgressReporter | undefined;
  /** What seeds a workspace created without seed_path (project-aware startup), if anything. */
  project?: ProjectSource;
  /** Which host paths this caller may name, and how much it may copy in (host-paths.ts). */
  hostPaths: HostPaths;
}

/** Every hint is required so that no tool ships with the protocol's pessimistic defaults by accident. */
export type ToolHints = Required<
  Pick<ToolAnnotations, "readOnlyHint" | "destructiveHint" | "idempotentHint" | "openWorldHint">
>;

export interface PyroTool<I extends z.ZodObject = z.ZodObject, O extends z.ZodObject = z.ZodObject> {
  name: ToolName;
  title: string;
  /** Written for a model: what the tool does, when to use it, what it returns. */
  description: string;
  inputSchema: I;
  outputSchema: O;
  annotations: ToolHints;
  call(args: z.output<I>, ctx: ToolContext): Promise<z.input<O>>;
}

export function defineTool<I extends z.ZodObject, O extends z.ZodObject>(tool: PyroTool<I, O>): PyroTool<I, O> {
  return tool;
}

/** For the tools that start a sandbox: what the first call on a host without the environment costs. */
export const buildNote = [
  "If `environment` is not built on this host yet, the call first builds it once (usually 1-5 min, at",
  `most ${ENVIRONMENT_BUILD_TIMEOUT_MS / 60_000} min, then reused), sending progress notifications meanwhile (log messages`,
  "without a progress token); running `pyro env pull ENV` on the host ahead of time avoids that wait.",
].join(" ");

/**
 * A profile whose tool takes fewer arguments than the operation (core's create has no secrets,
 * core's update no host rules) hands the manager the whole request: the fields it leaves out take
 * the contract's defaults. This is that face's one parse into the manager's type.
 */
export function asRequest<S extends z.ZodType>(schema: S, args: Partial<z.input<S>>, operation: string): z.output<S> {
  return parseParams(schema, args, operation);
}
