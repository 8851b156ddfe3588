// Owns command execution inside the sandbox: one process group per exec, streamed and capped
// output, and a timeout (or cancellation) that kills the whole group, not just the leader.
import { statSync } from "node:fs";
import type { HandlerContext } from "../channel/channel.js";
import { Stream } from "../channel/frame.js";
import { OutputCap, signalExitCode, TIMEOUT_EXIT_CODE } from "../channel/output.js";
import type { AgentExecResult } from "../channel/protocol.js";
import { AgentExecParams, BASE_ENV } from "../channel/protocol.js";
import { PyroError } from "../contract/errors.js";
import { spawnProcess } from "./spawner.js";

/** How long to keep reading after the command exits, for output still in the pipes. */
const DRAIN_GRACE_MS = 200;

export async function execHandler(raw: unknown, ctx: HandlerContext): Promise<AgentExecResult> {
  const params = AgentExecParams.parse(raw);
  if (!statSync(params.cwd, { throwIfNoEntry: false })?.isDirectory()) {
    throw new PyroError("INVALID_ARGUMENT", `working directory ${params.cwd} does not exist in the sandbox`);
  }
  const started = Date.now();
  const [file, ...args] = params.argv;
  // Its own session and process group, so a timeout can kill everything it started.
  const child = spawnProcess(file!, args, { cwd: params.cwd, env: { ...BASE_ENV, ...params.env } });

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
  const killGroup = () => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {}
  };
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, params.timeout_ms);
  const onAbort = () => killGroup();
  ctx.signal.addEventListener("abort", onAbort, { once: true });

  const outcome = await child.exit;
  clearTimeout(timer);
  ctx.signal.removeEventListener("abort", onAbort);

  // Background children may hold the pipes open forever; give output a moment, then stop reading.
  const drained = await Promise.race([
    outputs.then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), DRAIN_GRACE_MS)),
  ]);
  if (!drained) {
    child.stdout.destroy();
    child.stderr.destroy();
  }

  let exitCode: number;
  if (outcome.error) {
    const err = outcome.error;
    const reason =
      err.code === "ENOENT"
        ? `${file}: command not found`
        : err.code === "EACCES"
          ? `${file}: permission denied`
          : `${file}: ${err.message}`;
    await ctx.send(Stream.STDERR, Buffer.from(`${reason}\n`));
    exitCode = err.code === "ENOENT" ? 127 : 126;
  } else if (timedOut) {
    exitCode = TIMEOUT_EXIT_CODE;
  } else if (outcome.code !== null) {
    exitCode = outcome.code;
  } else {
    exitCode = signalExitCode(outcome.signal);
  }

  return {
    exit_code: exitCode,
    signal: outcome.signal,
    timed_out: timedOut,
    stdout_truncated: caps.stdout.truncated,
    stderr_truncated: caps.stderr.truncated,
    duration_ms: Date.now() - started,
  };
}
