// Owns the output cap shared by every exec path (the guest agent and the host's one-shot runner):
// pass bytes through up to a limit, drop the rest, remember that something was dropped.
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
