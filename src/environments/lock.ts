// Owns the cross-process lock that keeps two pulls from building the same environment: an O_EXCL
// lock file naming its owner, taken over when that owner has died (a SIGKILLed pull never unlocks).

import { randomBytes } from "node:crypto";
import { open, readFile, stat, unlink } from "node:fs/promises";
import { PyroError } from "../contract/errors.js";
import { processAlive, processStartTime } from "../util/process.js";

interface LockOwner {
  pid: number;
  /** Kernel start time of the owner, so a recycled pid is not mistaken for the owner. */
  start: string | null;
  token: string;
}

export interface LockHandle {
  readonly path: string;
  release(): Promise<void>;
}

export interface AcquireOptions {
  /** Give up after this long; locks are held for a whole build, so the default is generous. */
  timeoutMs?: number;
  pollMs?: number;
  signal?: AbortSignal;
  /** Called once when the lock is found held by a live process, before waiting. */
  onWait?: (ownerPid: number) => void;
}

/** A lock file that is still empty this long after creation was abandoned mid-write. */
const EMPTY_LOCK_GRACE_MS = 5_000;

export { processAlive, processStartTime };

async function ownerAlive(owner: LockOwner): Promise<boolean> {
  if (!processAlive(owner.pid)) return false;
  if (owner.start === null) return true;
  const start = await processStartTime(owner.pid);
  return start === null || start === owner.start;
}

async function readOwner(path: string): Promise<LockOwner | "missing" | "unreadable"> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "missing";
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as Partial<LockOwner>;
    if (typeof parsed.pid === "number" && typeof parsed.token === "string") {
      return { pid: parsed.pid, start: typeof parsed.start === "string" ? parsed.start : null, token: parsed.token };
    }
  } catch {}
  return "unreadable";
}

async function createExclusive(path: string, content: string): Promise<boolean> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, "wx", 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  try {
    await fh.writeFile(content);
  } finally {
    await fh.close();
  }
  return true;
}

/**
 * Removes the lock at `path` if its owner is dead. Only the holder of the side ".takeover" lock may
 * unlink a stale lock, and it re-reads the owner under that guard: without it, two waiters that
 * both saw the same stale owner could each delete the other's fresh lock and both "hold" it.
 */
async function breakIfStale(path: string): Promise<{ broken: boolean; ownerPid?: number }> {
  const guard = `${path}.takeover`;
  const token = randomBytes(8).toString("hex");
  if (!(await createExclusive(guard, JSON.stringify({ pid: process.pid, start: await selfStart(), token })))) {
    // Someone else is taking over right now, or died doing so; a dead guard holder is cleared so
    // the next attempt can proceed.
    const g = await readOwner(guard);
    if (g === "missing") return { broken: false };
    if (g === "unreadable" ? await olderThan(guard, EMPTY_LOCK_GRACE_MS) : !(await ownerAlive(g))) {
      await unlink(guard).catch(() => {});
    }
    return { broken: false };
  }
  try {
    const owner = await readOwner(path);
    if (owner === "missing") return { broken: true };
    if (owner === "unreadable") {
      if (!(await olderThan(path, EMPTY_LOCK_GRACE_MS))) return { broken: false };
    } else if (await ownerAlive(owner)) {
      return { broken: false, ownerPid: owner.pid };
    }
    await unlink(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
    });
    return { broken: true };
  } finally {
    await unlink(guard).catch(() => {});
  }
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > ms;
  } catch {
    return false;
  }
}

let ownStart: Promise<string | null> | undefined;

function selfStart(): Promise<string | null> {
  ownStart ??= processStartTime(process.pid);
  return ownStart;
}

/** One attempt: the lock if it was free (or held by a dead process), else null. */
export async function tryAcquireLock(path: string): Promise<LockHandle | null> {
  const handle = await attempt(path);
  return handle.lock ?? null;
}

async function attempt(path: string): Promise<{ lock?: LockHandle; ownerPid?: number }> {
  const token = randomBytes(8).toString("hex");
  const content = JSON.stringify({ pid: process.pid, start: await selfStart(), token }) + "\n";
  for (let i = 0; i < 3; i++) {
    if (await createExclusive(path, content)) return { lock: makeHandle(path, token) };
    const { broken, ownerPid } = await breakIfStale(path);
    if (!broken) return { ownerPid };
  }
  return {};
}

function makeHandle(path: string, token: string): LockHandle {
  let released = false;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      // Never delete a lock that is no longer ours (e.g. taken over after a long suspend).
      const owner = await readOwner(path).catch(() => "unreadable" as const);
      if (typeof owner === "object" && owner.token === token) await unlink(path).catch(() => {});
    },
  };
}

/** Waits for the lock, polling; a holder that dies is taken over on the next poll. */
export async function acquireLock(path: string, opts: AcquireOptions = {}): Promise<LockHandle> {
  const timeoutMs = opts.timeoutMs ?? 15 * 60_000;
  const pollMs = opts.pollMs ?? 200;
  const deadline = Date.now() + timeoutMs;
  let announced = false;
  for (;;) {
    opts.signal?.throwIfAborted();
    const { lock, ownerPid } = await attempt(path);
    if (lock) return lock;
    if (!announced && ownerPid !== undefined) {
      announced = true;
      opts.onWait?.(ownerPid);
    }
    if (Date.now() >= deadline) {
      throw new PyroError(
        "LOCK_TIMEOUT",
        `timed out after ${Math.round(timeoutMs / 1000)} s waiting for the lock ${path}` +
          (ownerPid ? ` held by pid ${ownerPid}; wait for that process to finish or stop it` : ""),
        { lock: path, owner_pid: ownerPid },
      );
    }
    await sleep(pollMs, opts.signal);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
