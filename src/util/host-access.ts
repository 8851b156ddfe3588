// Owns the words for a host path pyro may not touch. pyro reads and writes host paths (seeds, sync
// sources, export and image targets) with the rights of the user who runs it, root or rootless; a
// refusal is the caller's to fix, never "a bug in pyro".
import { PyroError } from "../contract/errors.js";

const DENIED = new Set(["EACCES", "EPERM", "EROFS"]);

export function unreadableSource(what: string, path: string, err: NodeJS.ErrnoException): PyroError {
  const where = err.path && err.path !== path ? ` (${err.path})` : "";
  return new PyroError(
    "INVALID_ARGUMENT",
    `${what} ${path} cannot be read by this user${where}: ${err.code ?? err.message}; ` +
      "pyro reads host paths with your own rights: choose a path you can read, or change its permissions",
  );
}

/** A refused write as INVALID_ARGUMENT naming the target; any other error unchanged. */
export function unwritableTarget(what: string, path: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (!code || !DENIED.has(code)) return err;
  return new PyroError(
    "INVALID_ARGUMENT",
    `${what} ${path} cannot be written by this user: ${code}; ` +
      "pyro writes host paths with your own rights: choose a directory you can write to",
  );
}
