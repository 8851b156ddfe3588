// Owns rootless mode: how a pyro process started by an ordinary user comes to hold the privileges
// its engines need without the host's root. Every pyro process of that user joins one long-lived
// user namespace (the user is root in it; the user's subordinate ids from /etc/subuid map the rest)
// and one mount namespace, both held open by a small "holder" process. So overlay mounts, network
// namespaces, runsc and virtiofsd work as they do under root, and every pyro process of the user
// (CLI, MCP server, supervisors) sees the same mounts, while the host sees only the user's own uid.
//
// The launcher (src/cli/launcher.ts) calls enterCommand() before the CLI loads: a holder is found or
// started, then the CLI re-runs under `nsenter` in its namespaces. Nothing here needs pyro's other
// modules, so the launcher stays small.
import { spawn } from "node:child_process";
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";

/** Set in the environment of a pyro process that runs inside the user's namespaces. */
export const ENTERED_ENV = "PYRO_USERNS";
/** Set when entering failed: the reason, in words with the fix, for doctor and the engines. */
export const ROOTLESS_ERROR_ENV = "PYRO_ROOTLESS_ERROR";
/** `PYRO_ROOTLESS=off` keeps a non-root pyro in the host's namespaces (engines then cannot run). */
export const ROOTLESS_SWITCH_ENV = "PYRO_ROOTLESS";

const HOLDER_FILE = "userns.json";
const HOLDER_READY_MS = 5_000;

interface HolderRecord {
  pid: number;
  /** /proc/PID/stat's start time: guards against a recycled pid after the holder died. */
  start: string;
}

/** The user namespace's uid map as the kernel states it, one "inside outside count" line each. */
export function readIdMap(pid: number | "self", which: "uid_map" | "gid_map"): string {
  return readFileSync(`/proc/${pid}/${which}`, "utf8");
}

/** True when this process is in the host's own user namespace with the whole id range. */
export function inInitialUserNamespace(uidMap = readIdMap("self", "uid_map")): boolean {
  const first = uidMap.trim().split(/\s+/);
  return first[0] === "0" && first[1] === "0" && first[2] === "4294967295";
}

function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22, counted after the command name, which may itself hold spaces and parentheses.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function readRecord(file: string): HolderRecord | undefined {
  try {
    const parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<HolderRecord>;
    if (typeof parsed.pid === "number" && typeof parsed.start === "string") return parsed as HolderRecord;
  } catch {}
  return undefined;
}

/** The holder named by `file` if it is still that very process and still holds a user namespace. */
function liveHolder(file: string): number | undefined {
  const record = readRecord(file);
  if (!record || startTime(record.pid) !== record.start) return undefined;
  try {
    if (inInitialUserNamespace(readIdMap(record.pid, "uid_map"))) return undefined;
  } catch {
    return undefined;
  }
  return record.pid;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Why `unshare` could not make the namespace, as the one line a user needs to fix it. */
export function explainUnshareFailure(stderr: string, user: string): string {
  const said = (stderr.trim().split("\n").pop() ?? "").replace(/: Success$/, "");
  if (/subuid|subgid|no.*range|map-auto/i.test(said)) {
    return (
      `user ${user} has no subordinate uid/gid range; an administrator runs: ` +
      `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user} (any free range of 65536) (${said})`
    );
  }
  if (/newuidmap|newgidmap/.test(said) && /No such file|not found/i.test(said)) {
    return `newuidmap/newgidmap are not installed; an administrator runs: apt-get install uidmap (${said})`;
  }
  if (/Operation not permitted|Permission denied/i.test(said)) {
    return (
      "this host forbids unprivileged user namespaces; an administrator runs: " +
      "sysctl -w kernel.unprivileged_userns_clone=1 (Debian) or " +
      `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu 24.04) (${said})`
    );
  }
  return `could not create a user namespace for ${user}: ${said || "unshare failed"}`;
}

function userName(): string {
  return process.env.USER ?? process.env.LOGNAME ?? String(process.getuid?.());
}

/** Starts a holder: `unshare` makes the namespaces and becomes `sleep infinity` in them (same pid). */
async function startHolder(): Promise<{ pid: number } | { error: string }> {
  const child = spawn(
    "unshare",
    ["--user", "--map-auto", "--map-root-user", "--mount", "--propagation", "slave", "--", "sleep", "infinity"],
    { detached: true, stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    if (stderr.length < 4096) stderr += chunk.toString("utf8");
  });
  const spawnError = new Promise<string>((resolve) =>
    child.once("error", (err: NodeJS.ErrnoException) =>
      resolve(
        err.code === "ENOENT"
          ? "unshare is not installed; an administrator runs: apt-get install util-linux"
          : err.message,
      ),
    ),
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const deadline = Date.now() + HOLDER_READY_MS;
  while (Date.now() < deadline) {
    const outcome = await Promise.race([
      spawnError,
      exited.then(() => "exited" as const),
      sleep(10).then(() => undefined),
    ]);
    if (outcome === "exited") {
      await sleep(20); // let the last of stderr arrive
      return { error: explainUnshareFailure(stderr, userName()) };
    }
    if (typeof outcome === "string") return { error: outcome };
    const pid = child.pid!;
    let comm = "";
    try {
      comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    } catch {}
    if (comm === "sleep") {
      child.stderr!.destroy();
      child.unref();
      return { pid };
    }
  }
  child.kill("SIGKILL");
  return { error: `the user namespace holder did not start within ${HOLDER_READY_MS} ms (${stderr.trim()})` };
}

/**
 * The pid whose namespaces this user's pyro processes join, starting a holder if none lives.
 * Two pyro processes racing here agree on one holder: the record is published with link(2), which
 * fails when another got there first, and the loser's holder is killed.
 */
export async function userNamespaceHolder(stateDir: string): Promise<{ pid: number } | { error: string }> {
  const file = join(stateDir, HOLDER_FILE);
  for (let attempt = 0; attempt < 5; attempt++) {
    const live = liveHolder(file);
    if (live !== undefined) return { pid: live };
    const started = await startHolder();
    if ("error" in started) return started;
    const start = startTime(started.pid);
    if (start === undefined) continue;
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    const fd = openSync(tmp, "w", 0o600);
    writeSync(fd, JSON.stringify({ pid: started.pid, start } satisfies HolderRecord));
    closeSync(fd);
    try {
      if (readRecord(file) && liveHolder(file) === undefined) rmSync(file, { force: true });
      linkSync(tmp, file);
      return started;
    } catch {
      process.kill(started.pid, "SIGKILL");
    } finally {
      rmSync(tmp, { force: true });
    }
  }
  return { error: "could not agree on a user namespace holder with other pyro processes; retry" };
}

/** The command that runs `argv` inside the holder's user and mount namespaces, as the user's root there. */
export function nsenterArgv(holderPid: number, argv: readonly string[], cwd: string): string[] {
  return [
    "nsenter",
    `--target=${holderPid}`,
    "--user",
    "--mount",
    // Keeps the caller's own uid, gid and groups (a kvm group stays usable); the user's uid is root
    // inside, so the process still has every capability there.
    "--preserve-credentials",
    `--wd=${cwd}`,
    "--",
    ...argv,
  ];
}

/** True when a non-root process should join the user's namespaces before doing anything. */
export function wantsUserNamespace(env: NodeJS.ProcessEnv = process.env): boolean {
  if (process.getuid?.() === 0) return false;
  if (env[ENTERED_ENV] || env[ROOTLESS_SWITCH_ENV] === "off") return false;
  return true;
}
