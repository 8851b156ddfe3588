// The detached supervisor process: `node dist/src/supervisor/main.js RUN_DIR`. It reads its
// config from the run dir, boots the sandbox, reports readiness on fd 3 to whoever launched it,
// then serves its socket until teardown.
import { appendFileSync, closeSync, readFileSync, renameSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { toPyroError } from "../contract/errors.js";
import { getEngine } from "../engines/index.js";
import {
  SUPERVISOR_CONFIG_FILE,
  SUPERVISOR_LOG_FILE,
  SUPERVISOR_STATE_FILE,
  type SupervisorStateRecord,
} from "./protocol.js";
import { Supervisor, type SupervisorConfig } from "./supervisor.js";

const runDir = process.argv[2];
if (!runDir) {
  process.stderr.write("usage: supervisor RUN_DIR\n");
  process.exit(2);
}

const logPath = join(runDir, SUPERVISOR_LOG_FILE);
const recent: string[] = [];
const log = (line: string) => {
  recent.push(line);
  if (recent.length > 20) recent.shift();
  try {
    appendFileSync(logPath, `${new Date().toISOString()} ${line}\n`);
  } catch {}
};

const config = JSON.parse(readFileSync(join(runDir, SUPERVISOR_CONFIG_FILE), "utf8")) as SupervisorConfig;

function writeState(state: SupervisorStateRecord["state"], error?: SupervisorStateRecord["error"]): void {
  const record: SupervisorStateRecord = {
    pid: process.pid,
    id: config.id,
    socket: config.socketPath,
    state,
    updated_at: new Date().toISOString(),
    ...(error ? { error } : {}),
  };
  const path = join(runDir!, SUPERVISOR_STATE_FILE);
  try {
    writeFileSync(`${path}.tmp`, JSON.stringify(record));
    renameSync(`${path}.tmp`, path);
  } catch {}
}

/** fd 3 is a pipe back to the launcher: one JSON line, written synchronously so an exit right
 * after cannot lose it, then closed. */
function notify(message: unknown): void {
  try {
    writeSync(3, `${JSON.stringify(message)}\n`);
    closeSync(3);
  } catch {}
}

const supervisor = new Supervisor(config, getEngine(config.engine), log);
process.on("SIGTERM", () => void supervisor.teardown("SIGTERM"));
process.on("SIGINT", () => void supervisor.teardown("SIGINT"));
process.on("SIGHUP", () => {});
process.on("uncaughtException", (err) => {
  log(`uncaught: ${err.stack ?? err.message}`);
  void supervisor.teardown("internal error").finally(() => process.exit(1));
});

writeState("starting");
log(`supervisor ${process.pid} starting ${config.engine} sandbox ${config.id}`);
try {
  await supervisor.listen();
  const hello = await supervisor.start();
  writeState("ready");
  notify({ ok: true, hello, pid: process.pid });
} catch (err) {
  const e = toPyroError(err);
  const tail = recent
    .filter((l) => l.startsWith("sandbox:"))
    .slice(-8)
    .join("\n");
  const message = tail ? `${e.message}\nlast sandbox output:\n${tail}` : e.message;
  writeState("failed", { code: e.code, message });
  notify({ ok: false, error: { code: e.code, message } });
}
await supervisor.done;
if (!config.ephemeral) writeState("stopped");
process.exit(0);
