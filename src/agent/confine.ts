// Owns path confinement inside the sandbox, the security core of every file operation: a caller's
// path is resolved (`..`, then every symlink of every existing component) and must stay inside
// the workspace root, or the operation is refused before it touches anything.
import { lstat, readlink, realpath } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, relative, resolve } from "node:path";
import { PyroError } from "../contract/errors.js";

export interface Confined {
  /** The normalised absolute path (symlinks not resolved). */
  abs: string;
  /** The same, relative to the root ("" for the root itself). */
  rel: string;
}

function outside(userPath: string, why: string): PyroError {
  return new PyroError(
    "PATH_OUTSIDE_WORKSPACE",
    `${userPath} ${why}; paths must stay inside /workspace (relative paths are resolved from /workspace)`,
  );
}

function within(root: string, path: string): boolean {
  return path === root || path.startsWith(`${root}/`);
}

/** Resolves userPath against root and proves it, and whatever its symlinks point at, stays inside. */
export async function confine(root: string, userPath: string): Promise<Confined> {
  if (userPath.includes("\0")) throw new PyroError("INVALID_ARGUMENT", "paths must not contain NUL bytes");
  const abs = normalize(isAbsolute(userPath) ? userPath : join(root, userPath)).replace(/\/+$/, "") || "/";
  if (!within(root, abs)) throw outside(userPath, "is outside /workspace");
  const rootReal = await realpath(root);
  // Walk down from the root: each existing component is resolved as the kernel would resolve it.
  let current = root;
  for (const part of relative(root, abs).split("/").filter(Boolean)) {
    const next = join(current, part);
    const info = await lstat(next).catch(() => undefined);
    if (!info) return { abs, rel: relative(root, abs) };
    if (info.isSymbolicLink()) {
      const target = await readlink(next);
      const resolved = await realpath(next).catch(() => resolve(dirname(next), target));
      if (!within(rootReal, resolved))
        throw outside(
          userPath,
          `goes through the symlink ${relative(root, next)} -> ${target}, which leads outside /workspace`,
        );
      current = resolved;
      continue;
    }
    current = next;
  }
  return { abs, rel: relative(root, abs) };
}
