// Owns what the agent's shells and services both need to know about guest processes: the process
// table from /proc, signalling without caring whether the target is already gone, and waiting that
// ends early on an event or a cancellation.
import { readdirSync, readFileSync } from "node:fs";

export interface GuestProcess {
  pid: number;
  /** One letter, as /proc has it: Z is a zombie waiting to be reaped. */
  state: string;
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
      pgrp: Number(fields[2]),
      session: Number(fields[3]),
      started: Number(fields[19]),
    });
  }
  return found;
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
