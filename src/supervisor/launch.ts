// Owns starting a detached supervisor process for a sandbox and waiting, bounded, until it says
// its agent is ready (or why it is not). The launcher may exit at once afterwards.
import { spawn } from "node:child_process";
import { mkdir, open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import type { Hello } from "../channel/channel.js";
import { isErrorCode, PyroError } from "../contract/errors.js";
import { SUPERVISOR_MAIN } from "../version.js";
import {
  SUPERVISOR_CONFIG_FILE,
  SUPERVISOR_LOG_FILE,
  SUPERVISOR_SOCKET_FILE,
  SUPERVISOR_STATE_FILE,
  SupervisorStateRecord,
} from "./protocol.js";
import type { SupervisorConfig } from "./supervisor.js";

/** Unix socket paths are limited to 107 bytes on Linux. */
const MAX_SOCKET_PATH = 107;

export function socketPathFor(runDir: string): string {
  return join(runDir, SUPERVISOR_SOCKET_FILE);
}

export interface LaunchedSupervisor {
  pid: number;
  socketPath: string;
  hello: Hello;
}

export async function launchSupervisor(config: Omit<SupervisorConfig, "socketPath">): Promise<LaunchedSupervisor> {
  const socketPath = socketPathFor(config.runDir);
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `the state directory path is too long for a Unix socket (${socketPath}); set PYRO_STATE_DIR to a shorter path`,
    );
  }
  await mkdir(config.runDir, { recursive: true });
  await writeFile(join(config.runDir, SUPERVISOR_CONFIG_FILE), JSON.stringify({ ...config, socketPath }));
  const log = await open(join(config.runDir, SUPERVISOR_LOG_FILE), "a");
  const child = spawn(process.execPath, [SUPERVISOR_MAIN, config.runDir], {
    detached: true,
    stdio: ["ignore", log.fd, log.fd, "pipe"],
  });
  await log.close();
  const readyPipe = child.stdio[3] as Readable;
  const exitedEarly = new Promise<never>((_, reject) => {
    child.once("exit", (code, signal) =>
      reject(
        new PyroError(
          "SANDBOX_START_FAILED",
          `the sandbox supervisor exited (code ${code}, signal ${signal}) before it was ready; see ${join(config.runDir, SUPERVISOR_LOG_FILE)}`,
        ),
      ),
    );
  });
  exitedEarly.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new PyroError(
            "SANDBOX_START_FAILED",
            `the sandbox was not ready within ${config.readyTimeoutMs} ms; see ${join(config.runDir, SUPERVISOR_LOG_FILE)}`,
          ),
        ),
      config.readyTimeoutMs + 5_000,
    );
  });
  timeout.catch(() => {});
  const line = new Promise<string>((resolve) => {
    let text = "";
    readyPipe.setEncoding("utf8");
    readyPipe.on("data", (chunk: string) => {
      text += chunk;
      if (text.includes("\n")) resolve(text.slice(0, text.indexOf("\n")));
    });
  });
  try {
    const message = JSON.parse(await Promise.race([line, exitedEarly, timeout])) as
      | { ok: true; hello: Hello; pid: number }
      | { ok: false; error: { code: string; message: string } };
    if (!message.ok) {
      const code = isErrorCode(message.error.code) ? message.error.code : "SANDBOX_START_FAILED";
      throw new PyroError(code, message.error.message);
    }
    return { pid: message.pid, socketPath, hello: message.hello };
  } catch (err) {
    if (child.exitCode === null) child.kill("SIGTERM");
    throw err;
  } finally {
    clearTimeout(timer);
    readyPipe.destroy();
    child.unref();
  }
}

/** The live supervisor of a sandbox directory, if any. A pid counts only if its command line is our
 * supervisor for this directory: pids get reused. */
export async function liveSupervisor(runDir: string): Promise<SupervisorStateRecord | undefined> {
  let state: SupervisorStateRecord;
  try {
    state = SupervisorStateRecord.parse(JSON.parse(await readFile(join(runDir, SUPERVISOR_STATE_FILE), "utf8")));
  } catch {
    return undefined;
  }
  try {
    const cmdline = (await readFile(`/proc/${state.pid}/cmdline`, "utf8")).split("\0");
    const stat = await readFile(`/proc/${state.pid}/stat`, "utf8");
    if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) return undefined;
    return cmdline.includes(SUPERVISOR_MAIN) && cmdline.includes(runDir) ? state : undefined;
  } catch {
    return undefined;
  }
}
