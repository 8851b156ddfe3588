// Owns starting guest processes. It prefers pyro's posix_spawn addon (vfork: under gVisor a fork of
// the agent costs twice what the command does) and falls back to child_process.spawn when the addon
// cannot load. Either way the child has its own session and process group, /dev/null as stdin,
// and pipes for stdout and stderr. Shells start on a pseudo-terminal, which only the addon offers.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { Socket } from "node:net";
import { constants } from "node:os";
import { PassThrough, type Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { PyroError } from "../contract/errors.js";
import { inLimitedCgroup } from "./limits.js";

export interface ProcessExit {
  code: number | null;
  signal: string | null;
  /** Set when the process could not be started at all (ENOENT, EACCES, ...). */
  error?: NodeJS.ErrnoException;
}

export interface Spawned {
  pid: number | undefined;
  stdout: Readable;
  stderr: Readable;
  exit: Promise<ProcessExit>;
}

interface Addon {
  spawn(file: string, argv: string[], envp: string[], cwd: string): { pid: number; stdout: number; stderr: number };
  reap(pid: number): { code: number | null; signal: number | null } | null;
  spawnPty(
    file: string,
    argv: string[],
    envp: string[],
    cwd: string,
    cols: number,
    rows: number,
  ): { pid: number; master: number };
  foregroundPgrp(fd: number): number;
  reseedRandom(entropy: Buffer): void;
  setClock(epochMs: number): void;
  mountFs(source: string, target: string, type: string): void;
}

export interface SpawnedPty {
  pid: number;
  /** The terminal's master side (close-on-exec); the caller reads, writes and closes it. */
  master: number;
  exit: Promise<ProcessExit>;
}

const ADDON_NAME = "pyro-spawn.node";

function loadAddon(): Addon | undefined {
  const candidates = [
    process.env.PYRO_SPAWN_ADDON,
    // Beside the bundled agent under /opt/pyro/agent, or beside dist/agent when run from source.
    fileURLToPath(new URL(`./${ADDON_NAME}`, import.meta.url)),
    fileURLToPath(new URL(`../../dist/agent/${ADDON_NAME}`, import.meta.url)),
  ];
  const require = createRequire(import.meta.url);
  for (const path of candidates) {
    if (!path || !existsSync(path)) continue;
    try {
      return require(path) as Addon;
    } catch {}
  }
  return undefined;
}

const addon = loadAddon();
export const SPAWNER = addon ? "posix_spawn" : "child_process";

/** The addon's system calls for a restored VM (reseedRandom, setClock, mountFs), when it loaded. */
export const vmSyscalls = addon
  ? { reseedRandom: addon.reseedRandom, setClock: addon.setClock, mountFs: addon.mountFs }
  : undefined;

const signalNames = new Map<number, string>(Object.entries(constants.signals).map(([name, n]) => [n, name]));
const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

export function spawnProcess(
  file: string,
  args: string[],
  opts: { cwd: string; env: Record<string, string> },
): Spawned {
  return inLimitedCgroup(() => (addon ? spawnWithAddon(addon, file, args, opts) : spawnWithNode(file, args, opts)));
}

function spawnWithNode(file: string, args: string[], opts: { cwd: string; env: Record<string, string> }): Spawned {
  const child = spawn(file, args, { cwd: opts.cwd, env: opts.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const exit = new Promise<ProcessExit>((resolve) => {
    child.once("error", (error) => resolve({ code: null, signal: null, error }));
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  return { pid: child.pid, stdout: child.stdout!, stderr: child.stderr!, exit };
}

function spawnWithAddon(
  addon: Addon,
  file: string,
  args: string[],
  opts: { cwd: string; env: Record<string, string> },
): Spawned {
  let started: { pid: number; stdout: number; stderr: number };
  try {
    const envp = Object.entries(opts.env).map(([k, v]) => `${k}=${v}`);
    started = addon.spawn(file, [file, ...args], envp, opts.cwd);
  } catch (err) {
    const e = err as Error & { errno?: number };
    const error: NodeJS.ErrnoException = Object.assign(new Error(e.message), {
      code: errnoNames.get(e.errno ?? 0) ?? "EIO",
      errno: e.errno,
    });
    const empty = () => {
      const s = new PassThrough();
      s.end();
      return s;
    };
    return {
      pid: undefined,
      stdout: empty(),
      stderr: empty(),
      exit: Promise.resolve({ code: null, signal: null, error }),
    };
  }
  const stdout = new Socket({ fd: started.stdout, readable: true, writable: false });
  const stderr = new Socket({ fd: started.stderr, readable: true, writable: false });
  // Usually the pipes close as the process exits, so look right away then; a process that keeps
  // running after closing them (or hands them to a background child) is polled for.
  const exit = pollExit(addon, started.pid, (lookNow) => {
    let open = 2;
    const onClose = () => {
      if (--open === 0) lookNow();
    };
    stdout.once("close", onClose);
    stderr.once("close", onClose);
  });
  return { pid: started.pid, stdout, stderr, exit };
}

/** Resolves when the child exits, polling reap() every 25 ms; `hint` may ask for a quick look. */
function pollExit(addon: Addon, pid: number, hint?: (lookNow: () => void) => void): Promise<ProcessExit> {
  return new Promise<ProcessExit>((resolve) => {
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const settle = (result: ProcessExit) => {
      settled = true;
      for (const t of timers) clearInterval(t);
      resolve(result);
    };
    const poll = () => {
      if (settled) return;
      let status: ReturnType<Addon["reap"]>;
      try {
        status = addon.reap(pid);
      } catch {
        // ECHILD: nothing left to wait for; report a plain exit rather than take the agent down.
        settle({ code: null, signal: null });
        return;
      }
      if (!status) return;
      settle({ code: status.code, signal: status.signal === null ? null : (signalNames.get(status.signal) ?? null) });
    };
    hint?.(() => {
      let tries = 0;
      const fast = setInterval(() => {
        poll();
        if (settled || ++tries > 20) clearInterval(fast);
      }, 1);
      timers.push(fast);
    });
    timers.push(setInterval(poll, 25));
  });
}

function requireAddon(): Addon {
  if (addon) return addon;
  throw new PyroError(
    "INTERNAL",
    `the guest agent could not load ${ADDON_NAME}, and shells need pyro's spawn addon for their terminals: rebuild pyro (npm run build) or set PYRO_SPAWN_ADDON to the addon's path`,
  );
}

/** Starts `file` on a new pseudo-terminal of cols x rows, as the leader of its own session with
 * the terminal as its controlling terminal. Throws (errno on the error) when it cannot start. */
export function spawnPty(
  file: string,
  args: string[],
  opts: { cwd: string; env: Record<string, string>; cols: number; rows: number },
): SpawnedPty {
  const native = requireAddon();
  const envp = Object.entries(opts.env).map(([k, v]) => `${k}=${v}`);
  const { pid, master } = inLimitedCgroup(() =>
    native.spawnPty(file, [file, ...args], envp, opts.cwd, opts.cols, opts.rows),
  );
  return { pid, master, exit: pollExit(native, pid) };
}

/** The terminal's foreground process group, asked through its master (gVisor refuses: ENOTTY). */
export function foregroundPgrp(master: number): number {
  return requireAddon().foregroundPgrp(master);
}
