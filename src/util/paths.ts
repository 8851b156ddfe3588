// Owns where pyro keeps things on the host: the state directory (sandboxes, records, logs) and the
// cache directory (environments), with the contract's environment-variable overrides.
import { homedir } from "node:os";
import { join } from "node:path";

export interface PyroPaths {
  stateDir: string;
  cacheDir: string;
}

export function resolvePaths(opts: { stateDir?: string; cacheDir?: string } = {}): PyroPaths {
  const env = process.env;
  // An empty variable counts as unset (as XDG says): "" would put pyro's state in the working directory.
  const stateDir =
    opts.stateDir || env.PYRO_STATE_DIR || join(env.XDG_STATE_HOME || join(homedir(), ".local", "state"), "pyro");
  const cacheDir = opts.cacheDir || env.PYRO_CACHE_DIR || join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "pyro");
  return { stateDir, cacheDir };
}

/** Every sandbox (one-shot run or workspace) gets its own run directory under here. */
export function sandboxesDir(paths: PyroPaths): string {
  return join(paths.stateDir, "sandboxes");
}

/** runsc's own state root (--root), kept under pyro's state so leftovers can be found. */
export function runscRoot(paths: PyroPaths): string {
  return join(paths.stateDir, "runsc");
}

export function environmentsDir(paths: PyroPaths): string {
  return join(paths.cacheDir, "environments");
}
