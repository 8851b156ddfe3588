// Owns process identity on the host: is a pid alive, and is it still the same process (pids are
// reused, so a record keeps the start time too).
import { readFile } from "node:fs/promises";

export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Field 22 of /proc/PID/stat; null when the process is gone or /proc is unavailable. */
export async function processStartTime(pid: number): Promise<string | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

export interface ProcessIdentity {
  pid: number;
  start: string | null;
}

export async function currentProcessIdentity(): Promise<ProcessIdentity> {
  return { pid: process.pid, start: await processStartTime(process.pid) };
}

/** True while the recorded process still runs (same pid and same start time). */
export async function identityAlive(who: ProcessIdentity): Promise<boolean> {
  if (!processAlive(who.pid)) return false;
  if (who.start === null) return true;
  const start = await processStartTime(who.pid);
  return start === null || start === who.start;
}
