// Owns pyro's MCP server: registering the tools of a profile, turning each call into a manager call
// and its outcome into a tool result, and serving it over stdio. Over stdio, stdout carries protocol
// messages only; everything else goes to the log (stderr).

import type { Readable, Writable } from "node:stream";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import {
  CallToolRequestSchema,
  type CallToolResult,
  ErrorCode,
  type LoggingLevel,
  LoggingLevelSchema,
  type ServerNotification,
  type ServerRequest,
  SetLevelRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { toPyroError } from "../contract/errors.js";
import { cannotRunInstructions, privilegeUnavailable } from "../rootless/mode.js";
import { sortKeys, stableJson } from "../sdk/json.js";
import { LazyManager, type ManagerApi, type ManagerOptions, type ProgressReporter } from "../sdk/manager.js";
import { formatIssues } from "../sdk/validate.js";
import { PYRO_VERSION } from "../version.js";
import { type HostPathOptions, HostPaths } from "./host-paths.js";
import { applyMode, McpMode, MODES } from "./modes.js";
import { DEFAULT_PROFILE, McpProfile } from "./profiles.js";
import type { ProjectSource } from "./project.js";
import { LineLimit, MAX_STDIO_MESSAGE_BYTES, oversizeError } from "./stdio-limit.js";
import type { PyroTool } from "./tool.js";
import { toolsFor } from "./tools/index.js";

export interface CreateServerOptions extends ManagerOptions {
  /** Which tools to expose; default `workspace-core` (`workspace-full` when a mode is given). */
  profile?: McpProfile;
  /** Narrows the profile to one use case's tools, framed for it. */
  mode?: McpMode;
  /** Seeds workspaces created without seed_path (see project.ts). */
  project?: ProjectSource;
  /** Which host paths callers may name (default: under the working directory, 2 GiB copied in). */
  hostPaths?: HostPathOptions | HostPaths;
  /** Stop workspaces idle past their TTL every 30 s (default true). */
  reapExpired?: boolean;
  /** An already open manager; the caller keeps ownership. Otherwise one is opened on first call. */
  manager?: ManagerApi;
  /** Where diagnostics go; never stdout. Default: stderr. */
  log?: (line: string) => void;
  /** How long a phase may run before the client hears about it again (default PROGRESS_HEARTBEAT_MS). */
  progressHeartbeatMs?: number;
}

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/**
 * A JSON-RPC "invalid params" error. The SDK's McpError would do, but it prefixes its message with
 * "MCP error -32602:", and the client adds that prefix again.
 */
class InvalidParams extends Error {
  readonly code = ErrorCode.InvalidParams;
}

const INSTRUCTIONS = [
  "pyro runs commands inside disposable, isolated Linux sandboxes (gVisor or a microVM) on this host.",
  "Use vm_run for a one-off command in a clean Debian system; the sandbox is gone when it returns.",
  "A command that exits non-zero is a normal result: read its exit_code, stdout and stderr.",
].join(" ");

const WORKSPACE_INSTRUCTIONS = [
  "For multi-step work (reproduce, edit, build, test) use a workspace instead: workspace_create with",
  "seed_path set to the project directory copies it into /workspace; then workspace_exec runs commands,",
  "workspace_file_read/workspace_file_write/workspace_patch_apply read and edit files, workspace_diff",
  "shows everything changed since create, workspace_export copies results out and workspace_reset starts",
  "over. Every `workspace` argument takes the id or the name. Delete workspaces with workspace_delete",
  "when done.",
].join(" ");

/** How often a running MCP server looks for workspaces idle past their TTL. */
const TTL_REAP_INTERVAL_MS = 30_000;

const FULL_INSTRUCTIONS = [
  "For a dev server or database use service_start with a readiness probe (and publish to reach it from",
  "the host); for an interactive program use shell_open, shell_write and shell_read with plain true and",
  "wait_for_idle_ms. Credentials go in workspace_create's secrets and reach a command only through",
  "secret_env; they are shown as [REDACTED].",
].join(" ");

function instructionsFor(profile: McpProfile): string {
  const denied = privilegeUnavailable();
  // A server that can run nothing says so first, so neither the model nor its user mistakes it for a working one.
  if (denied) return cannotRunInstructions(denied, baseInstructions(profile));
  return baseInstructions(profile);
}

function baseInstructions(profile: McpProfile): string {
  if (profile === "vm-run") return INSTRUCTIONS;
  const workspace = `${INSTRUCTIONS} ${WORKSPACE_INSTRUCTIONS}`;
  return profile === "workspace-full" ? `${workspace} ${FULL_INSTRUCTIONS}` : workspace;
}

function stderrLog(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * How often a call that is still in one phase says so again. MCP clients give up on a request after
 * 60 s without a response by default; a progress notification restarts that clock for a client that
 * asks it to (`resetTimeoutOnProgress`), and an environment build can sit in one phase for minutes.
 */
export const PROGRESS_HEARTBEAT_MS = 10_000;

/** A running command's output is sent at most this often, as one message per stream... */
export const OUTPUT_PROGRESS_MS = 1_000;
/** ... of at most this many characters (the rest is in the call's result). */
const OUTPUT_PROGRESS_CHARS = 4_096;

interface CallProgress {
  reporter: ProgressReporter;
  /** Ends the heartbeat; nothing is sent once the call has settled. */
  stop(): void;
}

/**
 * Relays one call's manager phases to its client: as `notifications/progress` when the client sent
 * a progress token, otherwise as info log messages (unless it set a higher log level). While a phase
 * lasts, its message is repeated every `heartbeatMs` with the time the call has taken so far. A
 * running command's output goes the same way, gathered into one message per stream at most every
 * OUTPUT_PROGRESS_MS (`stdout: …` / `stderr: …`), and is never repeated.
 */
function progressFor(
  extra: Extra,
  opts: { heartbeatMs: number; logsWanted: () => boolean; log: (line: string) => void },
): CallProgress {
  const token = extra._meta?.progressToken;
  const started = Date.now();
  let step = 0;
  let last: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let failed = false;

  const send = (message: string) => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(heartbeat, opts.heartbeatMs);
    timer.unref();
    if (token === undefined && !opts.logsWanted()) return;
    step += 1;
    const notification: ServerNotification =
      token === undefined
        ? { method: "notifications/message", params: { level: "info", logger: "pyro", data: message } }
        : { method: "notifications/progress", params: { progressToken: token, progress: step, message } };
    extra.sendNotification(notification).catch((err: unknown) => {
      // Once per call: a client that went away would otherwise get a line per heartbeat.
      if (failed) return;
      failed = true;
      opts.log(`[mcp] could not send progress to the client: ${toPyroError(err).message}`);
    });
  };
  const heartbeat = () => {
    if (last !== undefined) send(`${last} (${Math.round((Date.now() - started) / 1000)} s so far)`);
  };

  const pending = { stdout: "", stderr: "" };
  let outputTimer: NodeJS.Timeout | undefined;
  const flushOutput = () => {
    outputTimer = undefined;
    for (const stream of ["stdout", "stderr"] as const) {
      const text = pending[stream];
      pending[stream] = "";
      if (text === "") continue;
      const kept =
        text.length > OUTPUT_PROGRESS_CHARS
          ? `[${text.length - OUTPUT_PROGRESS_CHARS} characters left out here]${text.slice(-OUTPUT_PROGRESS_CHARS)}`
          : text;
      send(`${stream}: ${kept.replace(/\n$/, "")}`);
    }
  };

  return {
    reporter: {
      phase(name, detail) {
        last = detail ? `${name}: ${detail}` : name;
        send(last);
      },
      output(stream, text) {
        if (stopped) return;
        pending[stream] += text;
        outputTimer ??= setTimeout(flushOutput, OUTPUT_PROGRESS_MS);
        outputTimer.unref();
      },
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(outputTimer);
    },
  };
}

/** Every 30 s, asks the runtime (once it is open) to stop expired workspaces; returns the stopper. */
export function startReaper(runtime: () => Promise<ManagerApi> | undefined, log: (line: string) => void): () => void {
  const timer = setInterval(() => {
    void runtime()
      ?.then((m) => m.reapExpired?.())
      .then((ids) => {
        if (ids?.length) log(`[mcp] stopped expired workspaces: ${ids.join(", ")}`);
      })
      .catch(() => {});
  }, TTL_REAP_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

export interface BuiltServer {
  server: McpServer;
  /** Resolves once the connection closed, in-flight calls settled and an owned manager closed. */
  closed: Promise<void>;
}

export function buildServer(options: CreateServerOptions): BuiltServer {
  const {
    profile: requestedProfile,
    mode: requestedMode,
    project,
    manager,
    hostPaths: hostPathOptions,
    log = stderrLog,
    reapExpired: _reapExpired,
    progressHeartbeatMs = PROGRESS_HEARTBEAT_MS,
    ...managerOptions
  } = options;
  const mode = requestedMode === undefined ? undefined : McpMode.parse(requestedMode);
  const profile = McpProfile.parse(requestedProfile ?? (mode ? "workspace-full" : DEFAULT_PROFILE));
  const lazy = new LazyManager(manager, managerOptions);
  const hostPaths = hostPathOptions instanceof HostPaths ? hostPathOptions : new HostPaths(hostPathOptions);
  const instructions = mode ? `${instructionsFor(profile)} ${MODES[mode].instructions}` : instructionsFor(profile);
  const inflight = new Set<Promise<unknown>>();

  const server = new McpServer(
    { name: "pyro", version: PYRO_VERSION },
    {
      instructions: profile === "vm-run" ? instructions : `${instructions} ${hostPaths.describe()}`,
      // Phases reach a client that sent no progress token as log messages.
      capabilities: { logging: {} },
    },
  );

  // The SDK keeps the level a client sets only for its own sendLoggingMessage, which cannot tie a
  // message to the call it belongs to (over HTTP that decides which stream carries it); so it is
  // kept here. Each connection has a server of its own, so one level per server.
  let logLevel: LoggingLevel | undefined;
  server.server.setRequestHandler(SetLevelRequestSchema, (request) => {
    logLevel = request.params.level;
    return {};
  });
  const levels = LoggingLevelSchema.options;
  const logsWanted = () => logLevel === undefined || levels.indexOf(logLevel) <= levels.indexOf("info");

  async function invoke(tool: PyroTool, args: unknown, extra: Extra): Promise<CallToolResult> {
    const progress = progressFor(extra, { heartbeatMs: progressHeartbeatMs, logsWanted, log });
    try {
      const result = await tool.call(args as never, {
        manager: await lazy.get(),
        signal: extra.signal,
        progress: progress.reporter,
        project,
        hostPaths,
      });
      // Parsing strips anything outside the contract and catches a result that breaks it.
      const parsed = tool.outputSchema.safeParse(result);
      if (!parsed.success) {
        throw new Error(`${tool.name} produced a result outside its schema: ${formatIssues(parsed.error, result)}`);
      }
      return {
        content: [{ type: "text", text: stableJson(parsed.data) }],
        structuredContent: sortKeys(parsed.data) as Record<string, unknown>,
      };
    } catch (err) {
      const error = toPyroError(err);
      log(`[mcp] ${tool.name} failed: ${error.code}: ${error.message}`);
      return { isError: true, content: [{ type: "text", text: `${error.code}: ${error.message}` }] };
    } finally {
      progress.stop();
    }
  }

  const exposed = new Map<string, PyroTool>();
  const tools = mode ? applyMode(mode, toolsFor(profile)) : toolsFor(profile);
  for (const listed of tools) {
    const tool =
      project && listed.name === "workspace_create"
        ? {
            ...listed,
            description: `${listed.description} Without seed_path, /workspace starts with ${project.description}; pass seed_path to use something else.`,
          }
        : listed;
    exposed.set(tool.name, tool);
    server.registerTool(
      tool.name,
      {
        title: tool.title,
        description: tool.description,
        inputSchema: tool.inputSchema,
        outputSchema: tool.outputSchema,
        annotations: { title: tool.title, ...tool.annotations },
      },
      (args: unknown, extra: Extra) => invoke(tool, args, extra),
    );
  }

  // McpServer reports arguments that fail inputSchema as an `isError` tool result. The contract
  // makes them protocol errors (-32602, invalid params), so calls are routed here instead; listing
  // tools stays with McpServer, which renders the same schemas as JSON Schema.
  server.server.removeRequestHandler("tools/call");
  server.server.setRequestHandler(CallToolRequestSchema, (request, extra) => {
    const { name } = request.params;
    const tool = exposed.get(name);
    if (!tool) {
      const offered = [...exposed.keys()].join(", ");
      const offer = mode ? `mode ${mode} (pyro mcp serve --mode ${mode})` : `profile ${profile}`;
      throw new InvalidParams(`Unknown tool ${name}: ${offer} offers ${offered}`);
    }
    const args = request.params.arguments ?? {};
    const unknown = Object.keys(args).filter((key) => !(key in tool.inputSchema.shape));
    if (unknown.length > 0) throw new InvalidParams(unknownArguments(tool, unknown, profile));
    const parsed = tool.inputSchema.safeParse(args);
    if (!parsed.success) {
      throw new InvalidParams(`Invalid arguments for ${name}: ${formatIssues(parsed.error, args)}`);
    }
    const call = invoke(tool, parsed.data, extra);
    inflight.add(call);
    return call.finally(() => inflight.delete(call));
  });

  let closedResolve: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    closedResolve = resolve;
  });
  // A long-running server reaps expired workspaces itself, once its runtime is open; an HTTP
  // server runs one reaper for all its sessions instead.
  const stopReaper = options.reapExpired === false ? () => {} : startReaper(() => lazy.peek(), log);
  const previousOnclose = server.server.onclose;
  server.server.onclose = () => {
    stopReaper();
    previousOnclose?.();
    // Closing aborted the calls in flight; let their sandboxes tear down before the manager goes.
    void Promise.allSettled([...inflight])
      .then(() => lazy.close())
      .catch((err: unknown) => log(`[mcp] closing the runtime failed: ${toPyroError(err).message}`))
      .finally(closedResolve);
  };

  return { server, closed };
}

/**
 * Why a call with arguments its tool does not take is refused rather than run without them: a
 * dropped `network_policy` or `secrets` would give the caller a sandbox other than the one it asked
 * for, silently. Names the profile whose version of the tool takes them, if one does.
 */
function unknownArguments(tool: PyroTool, unknown: string[], profile: McpProfile): string {
  const names = unknown.join(", ");
  const wider = McpProfile.options.find((p) =>
    toolsFor(p).some((t) => t.name === tool.name && unknown.every((key) => key in t.inputSchema.shape)),
  );
  const fix =
    wider && wider !== profile
      ? `profile ${wider} offers them (pyro mcp serve --profile ${wider}); this server runs ${profile}`
      : `it takes ${Object.keys(tool.inputSchema.shape).join(", ")}`;
  return `Invalid arguments for ${tool.name}: ${names} ${unknown.length === 1 ? "is not an argument" : "are not arguments"} of ${tool.name} here; ${fix}`;
}

/** An MCP server exposing the tools of `profile`, not yet connected to any transport. */
export function createServer(options: CreateServerOptions = {}): McpServer {
  return buildServer(options).server;
}

export interface ServeStdioOptions extends CreateServerOptions {
  stdin?: Readable;
  stdout?: Writable;
  /** Aborting closes the server (the CLI aborts on SIGINT/SIGTERM). */
  signal?: AbortSignal;
}

/** Serves MCP over stdio until the client closes stdin or `signal` aborts. */
export async function serveStdio(options: ServeStdioOptions = {}): Promise<void> {
  const { stdin = process.stdin, stdout = process.stdout, signal, ...serverOptions } = options;
  if (signal?.aborted) return;
  const { server, closed } = buildServer(serverOptions);
  const log = serverOptions.log ?? stderrLog;
  // Oversized messages are refused here, by size, so the SDK's own buffer limit (which closes the
  // transport) is never reached.
  const lines = new LineLimit(MAX_STDIO_MESSAGE_BYTES, (oversize) => {
    log(`[mcp] refused a ${oversize.bytes}-byte message (limit ${MAX_STDIO_MESSAGE_BYTES})`);
    if (oversize.id !== undefined) stdout.write(oversizeError(oversize));
  });
  stdin.pipe(lines);
  const transport = new StdioServerTransport(lines, stdout, { maxBufferSize: MAX_STDIO_MESSAGE_BYTES + 1024 * 1024 });
  const stop = () => void server.close();
  // The SDK's stdio transport does not notice end of input; a client that exits must end the server.
  stdin.once("end", stop);
  stdin.once("close", stop);
  signal?.addEventListener("abort", stop, { once: true });
  await server.connect(transport);
  try {
    await closed;
  } finally {
    stdin.off("end", stop);
    stdin.off("close", stop);
    signal?.removeEventListener("abort", stop);
  }
}
