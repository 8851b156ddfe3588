// Owns how the host names things in the guest: paths under /workspace, and how long a call to the
// guest agent may take before it is given up (every wait on a guest has a deadline).
import { join } from "node:path";
import { DEFAULTS } from "../contract/defaults.js";

export const GUEST_ROOT = DEFAULTS.guestWorkspace;

/** One file operation (list, read, write, delete). */
export const FILE_OP_DEADLINE_MS = 60_000;

/** One tar stream or tree manifest, in or out: a call this long is considered stuck. */
export const ARCHIVE_DEADLINE_MS = 10 * 60_000;

/** Relative guest paths are relative to /workspace; the agent confines every path again. */
export function guestPath(path: string): string {
  return path.startsWith("/") ? path : join(GUEST_ROOT, path);
}
