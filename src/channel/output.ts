// Owns the exec policy every exec path shares (the guest agent, and gvisor's one-shot runner on the
// host; a qemu one-shot runs through the agent): the output cap (pass bytes up to a limit, drop the
// rest, remember that something was dropped) and the exit code a caller sees.
import { constants } from "node:os";

export class OutputCap {
  private sent = 0;
  truncated = false;

  constructor(private readonly maxBytes: number) {}

  /** The part of chunk still within the cap (possibly empty). */
  take(chunk: Buffer): Buffer {
    const room = this.maxBytes - this.sent;
    if (chunk.length > room) this.truncated = true;
    if (room <= 0) return chunk.subarray(0, 0);
    const piece = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.sent += piece.length;
    return piece;
  }
}

/** The shell's convention for a process ended by a signal: 128 + the signal number. */
export function signalExitCode(signal: string | null): number {
  return 128 + ((constants.signals as Record<string, number>)[signal ?? ""] ?? 0);
}

/** Exit code reported when the timeout killed the command (as timeout(1) does). */
export const TIMEOUT_EXIT_CODE = 124;

/** How a command ended, as its runner saw it. */
export interface CommandEnd {
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Killed on the caller's request. */
  cancelled?: boolean;
  /** It never started: the program is missing (ENOENT) or not executable (anything else). */
  spawnError?: string;
}

/** The exit code a caller sees, by the shell's conventions: 127/126 for a program that could not
 * start, 124 for a timeout, 128 + SIGKILL for a cancel (whatever the leader's own fate), else the
 * command's own code, or 128 + the signal that ended it. */
export function exitCodeOf(end: CommandEnd): number {
  if (end.spawnError !== undefined) return end.spawnError === "ENOENT" ? 127 : 126;
  if (end.timedOut) return TIMEOUT_EXIT_CODE;
  if (end.cancelled) return signalExitCode("SIGKILL");
  return end.code ?? signalExitCode(end.signal);
}
