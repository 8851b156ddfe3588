// Owns what the agent's execs, shells and services need to know about guest processes: the process
// table from /proc, killing a command's whole tree, signalling without caring whether the target is
// already gone, and waiting that ends early on an event or a cancellation.
import { readdirSync, readFileSync } from "node:fs";

export interface GuestProcess {
  pid: number;
  /** One letter, as /proc has it: Z is a zombie waiting to be reaped. */
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  /** Start time in clock ticks since boot. */
  started: number;
}

/** Every process of the sandbox, from /proc. */
export function processes(): GuestProcess[] {
  const found: GuestProcess[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    // "pid (comm) state ppid pgrp session ... starttime(22)": comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    found.push({
      pid: Number(entry),
      state: fields[0]!,
      ppid: Number(fields[1]),
      pgrp: Number(fields[2]),
      session: Number(fields[3]),
      started: Number(fields[19]),
    });
  }
  return found;
}

/** Whether the process's environment (as it was when it started its program) holds `entry`. */
function environHas(pid: number, entry: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, "latin1").split("\0").includes(entry);
  } catch {
    return false;
  }
}

/**
 * The live processes of the command whose leader is `root` (started `rootStarted`): its
 * descendants by parent link, everything in its session or process group, and everything whose
 * environment holds `marker` — the one trace an orphan keeps once init has adopted it (a daemon
 * that double-forked, dpkg's children after apt was killed). Never the agent or init.
 */
function commandProcesses(root: number, rootStarted: number | undefined, marker: string | undefined): GuestProcess[] {
  const table = processes().filter((p) => p.pid !== process.pid && p.pid !== 1);
  const children = new Map<number, GuestProcess[]>();
  for (const p of table) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const found = new Map<number, GuestProcess>();
  const visit = (p: GuestProcess) => {
    if (found.has(p.pid)) return;
    found.set(p.pid, p);
    for (const child of children.get(p.pid) ?? []) visit(child);
  };
  for (const p of table) {
    // A pid stays taken while it names a live group or session, so these cannot be a newcomer;
    // the leader itself is trusted only with its own start time (its pid is free once reaped).
    const isRoot = p.pid === root && p.started === rootStarted;
    if (isRoot || p.session === root || p.pgrp === root || (marker !== undefined && environHas(p.pid, marker))) {
      visit(p);
    }
  }
  return [...found.values()].filter((p) => p.state !== "Z");
}

/**
 * Kills the command led by `root` with everything it started, however it detached (setsid, a
 * pseudo-terminal of its own, a double fork): every process found is sent SIGKILL, and the search
 * repeats until a pass finds nothing alive, so a child forked mid-kill falls in the next pass.
 * Resolves with how many processes were killed, at the latest after `deadlineMs`.
 */
export async function killTree(
  root: number,
  opts: { marker?: string; rootStarted?: number; deadlineMs?: number } = {},
): Promise<number> {
  const deadline = Date.now() + (opts.deadlineMs ?? 5_000);
  const rootStarted = opts.rootStarted ?? startTime(root);
  const killed = new Set<number>();
  for (;;) {
    const alive = commandProcesses(root, rootStarted, opts.marker);
    if (alive.length === 0 || Date.now() > deadline) return killed.size;
    for (const p of alive) {
      sendSignal(p.pid, "SIGKILL");
      killed.add(p.pid);
    }
    // A killed process lingers until the kernel has torn it down (and stays a zombie until
    // reaped); look again shortly rather than spin.
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** When the process started (clock ticks since boot), to tell it from a later one given its pid. */
export function startTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  } catch {
    return undefined;
  }
}

/** process.kill for a pid or (negative) a process group that may already be gone. */
export function sendSignal(target: number, sig: NodeJS.Signals | 0): void {
  try {
    process.kill(target, sig);
  } catch {}
}

/** Resolves after ms, or as soon as one of `until` settles, leaving no timer behind. */
export async function wait(ms: number, ...until: Promise<unknown>[]): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([new Promise<void>((r) => (timer = setTimeout(r, ms))), ...until]);
  clearTimeout(timer);
}

/** Settles when `signal` aborts (at once if it already has). */
export function whenAborted(abort: AbortSignal): Promise<void> {
  return new Promise((r) => (abort.aborted ? r() : abort.addEventListener("abort", () => r(), { once: true })));
}
