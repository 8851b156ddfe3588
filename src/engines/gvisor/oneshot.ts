// Owns gvisor's one-shot run: the command itself is the container process (under tini, which
// reaps and forwards signals), the root is the environment under a memory-backed overlay (no host
// mount to leak), and `runsc run` dies with its owner (pdeathsig), taking the attached sandbox along.
import { spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Stream } from "../../channel/frame.js";
import { exitCodeOf, OutputCap } from "../../channel/output.js";
import type { AgentExecResult } from "../../channel/protocol.js";
import { networkFor, nsenterPrefix, type SandboxNetwork } from "../network.js";
import type { OneShotExec, SandboxSpec } from "../types.js";
import { buildOciSpec, gvisorGuestFiles, runscCgroupFlags } from "./oci.js";

const TINI = "/opt/pyro/bin/tini";
/** tini's own message when exec fails, rewritten to what a shell would say. */
const TINI_EXEC_FAILED = /^\[FATAL tini \(\d+\)\] exec (.+) failed: (No such file or directory|Permission denied)\n/;

export async function runOnceGvisor(
  spec: SandboxSpec,
  exec: OneShotExec,
  dirs: { bundle: string; runscRoot: string },
): Promise<AgentExecResult> {
  const started = Date.now();
  await mkdir(dirs.bundle, { recursive: true });
  let network: SandboxNetwork | undefined;
  try {
    network = await networkFor(spec);
    const oci = buildOciSpec({
      id: spec.id,
      rootPath: spec.environment.rootDir,
      vcpuCount: spec.vcpuCount,
      memMib: spec.memMib,
      hostNetwork: network !== undefined,
      args: [TINI, "-s", "--", ...exec.argv],
      cwd: exec.cwd,
      env: exec.env,
      guestFiles: await gvisorGuestFiles(dirs.bundle, spec.environment.rootDir, spec.network),
    });
    await writeFile(join(dirs.bundle, "config.json"), JSON.stringify(oci));
    const argv = [
      "setpriv",
      "--pdeathsig",
      "KILL",
      "--",
      ...(network ? nsenterPrefix(network) : []),
      "runsc",
      "--root",
      dirs.runscRoot,
      `--network=${network ? "host" : "none"}`,
      ...runscCgroupFlags(),
      "--overlay2=root:memory",
      "--cpu-num-from-quota",
      "run",
      "--bundle",
      dirs.bundle,
      spec.id,
    ];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    const caps = {
      [Stream.STDOUT]: new OutputCap(exec.maxOutputBytes),
      [Stream.STDERR]: new OutputCap(exec.maxOutputBytes),
    };
    let firstStderr = true;
    const pump = (source: NodeJS.ReadableStream, stream: 1 | 2) =>
      new Promise<void>((resolve) => {
        source.on("data", (chunk: Buffer) => {
          let data = chunk;
          if (stream === Stream.STDERR && firstStderr) {
            firstStderr = false;
            data = Buffer.from(
              chunk
                .toString("utf8")
                .replace(TINI_EXEC_FAILED, (_m, file: string, why: string) =>
                  why.startsWith("No such") ? `${file}: command not found\n` : `${file}: permission denied\n`,
                ),
            );
          }
          const piece = caps[stream].take(data);
          if (piece.length > 0) exec.onData(stream, piece);
        });
        source.on("close", resolve);
        source.on("error", () => resolve());
      });
    const outputs = Promise.all([pump(child.stdout!, Stream.STDOUT), pump(child.stderr!, Stream.STDERR)]);

    let timedOut = false;
    // Killing `runsc run` kills the whole sandbox (it is started attached): every process the
    // command started goes with it.
    const kill = () => child.kill("SIGKILL");
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, exec.timeoutMs);
    exec.signal?.addEventListener("abort", kill, { once: true });
    const outcome = await new Promise<{ code: number | null; signal: string | null; error?: Error }>((resolve) => {
      child.once("error", (error) => resolve({ code: null, signal: null, error }));
      child.once("exit", (code, signal) => resolve({ code, signal }));
    });
    clearTimeout(timer);
    exec.signal?.removeEventListener("abort", kill);
    await outputs;
    if (outcome.error) throw outcome.error;

    return {
      exit_code: exitCodeOf({ code: outcome.code, signal: outcome.signal, timedOut }),
      signal: null,
      timed_out: timedOut,
      stdout_truncated: caps[Stream.STDOUT].truncated,
      stderr_truncated: caps[Stream.STDERR].truncated,
      duration_ms: Date.now() - started,
    };
  } finally {
    await network?.teardown().catch((err: Error) => spec.log(`gvisor: network teardown: ${err.message}`));
  }
}
