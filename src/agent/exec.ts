// Owns command execution inside the sandbox: one session per exec, output streamed to the caller
// as it arrives (capped), and a timeout or cancellation that kills the command's whole tree — every
// process it started, including ones that made a session of their own — before it answers.

import { randomUUID } from "node:crypto";
import { statSync } from "node:fs";
import type { HandlerContext } from "../channel/channel.js";
import { Stream } from "../channel/frame.js";
import { exitCodeOf, OutputCap } from "../channel/output.js";
import type { AgentExecCancelResult, AgentExecResult, AgentOp, AgentParsedParams } from "../channel/protocol.js";
import { PyroError } from "../contract/errors.js";
import { killTree, startTime } from "./procs.js";
import { spawnProcess } from "./spawner.js";
import { processEnv } from "./trust.js";

/** How long to keep reading after the command exits, for output still in the pipes. */
const DRAIN_GRACE_MS = 200;

/** Set in every exec's environment to a value of its own: descendants inherit it, so the kill finds
 * an orphan that init adopted (no cgroups inside gVisor to hold the tree instead). */
export const EXEC_MARKER_VARIABLE = "PYRO_EXEC_ID";

/** The running execs that exec.cancel can reach, by the caller's exec_id. */
const cancellers = new Map<string, () => void>();

export async function execCancelHandler({ exec_id }: { exec_id: string }): Promise<AgentExecCancelResult> {
  const cancel = cancellers.get(exec_id);
  cancel?.();
  return { found: cancel !== undefined };
}

export async function execHandler(
  params: AgentParsedParams<typeof AgentOp.EXEC>,
  ctx: HandlerContext,
): Promise<AgentExecResult> {
  if (!statSync(params.cwd, { throwIfNoEntry: false })?.isDirectory()) {
    throw new PyroError("INVALID_ARGUMENT", `working directory ${params.cwd} does not exist in the sandbox`);
  }
  const started = Date.now();
  const [file, ...args] = params.argv;
  const markerValue = randomUUID();
  const marker = `${EXEC_MARKER_VARIABLE}=${markerValue}`;
  // Its own session and process group; the marker reaches what leaves both.
  const child = spawnProcess(file!, args, {
    cwd: params.cwd,
    env: processEnv({ ...params.env, [EXEC_MARKER_VARIABLE]: markerValue }),
  });
  const rootStarted = child.pid === undefined ? undefined : startTime(child.pid);

  const caps = { stdout: new OutputCap(params.max_output_bytes), stderr: new OutputCap(params.max_output_bytes) };
  const pump = (source: NodeJS.ReadableStream, stream: number, cap: OutputCap) =>
    new Promise<void>((resolve) => {
      source.on("data", (chunk: Buffer) => {
        const piece = cap.take(chunk);
        if (piece.length === 0) return;
        source.pause();
        void ctx.send(stream, piece).then(() => source.resume());
      });
      source.on("end", resolve);
      source.on("error", () => resolve());
      source.on("close", resolve);
    });
  const outputs = Promise.all([
    pump(child.stdout, Stream.STDOUT, caps.stdout),
    pump(child.stderr, Stream.STDERR, caps.stderr),
  ]);

  let timedOut = false;
  let cancelled = false;
  let killing: Promise<unknown> = Promise.resolve();
  const kill = (cause: "timeout" | "cancel") => {
    if (child.pid === undefined || timedOut || cancelled) return;
    if (cause === "timeout") timedOut = true;
    else cancelled = true;
    killing = killTree(child.pid, { marker, rootStarted });
  };
  const timer = setTimeout(() => kill("timeout"), params.timeout_ms);
  const onAbort = () => kill("cancel");
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  if (params.exec_id) cancellers.set(params.exec_id, onAbort);

  const outcome = await child.exit;
  clearTimeout(timer);
  ctx.signal.removeEventListener("abort", onAbort);
  if (params.exec_id) cancellers.delete(params.exec_id);
  // The answer means the command is gone: nothing it started may still hold a lock after it.
  await killing;

  // Background children may hold the pipes open forever; give output a moment, then stop reading.
  const drained = await Promise.race([
    outputs.then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), DRAIN_GRACE_MS)),
  ]);
  if (!drained) {
    child.stdout.destroy();
    child.stderr.destroy();
  }

  if (outcome.error) {
    const err = outcome.error;
    const reason =
      err.code === "ENOENT"
        ? `${file}: command not found`
        : err.code === "EACCES"
          ? `${file}: permission denied`
          : `${file}: ${err.message}`;
    await ctx.send(Stream.STDERR, Buffer.from(`${reason}\n`));
  }
  const exitCode = exitCodeOf({
    code: outcome.code,
    signal: outcome.signal,
    timedOut,
    cancelled,
    spawnError: outcome.error ? (outcome.error.code ?? "") : undefined,
  });

  return {
    exit_code: exitCode,
    signal: outcome.signal,
    timed_out: timedOut,
    cancelled,
    stdout_truncated: caps.stdout.truncated,
    stderr_truncated: caps.stderr.truncated,
    duration_ms: Date.now() - started,
  };
}
