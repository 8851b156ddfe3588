// Owns one question asked wherever a tree is copied without following links: does a symlink stay
// inside the tree it belongs to?

import { dirname, isAbsolute, relative, resolve } from "node:path";

/** True when `target`, the link at `entryPath` (relative to `root`), resolves inside `root`;
 * absolute targets never count as inside. */
export function linkStaysInside(root: string, entryPath: string, target: string): boolean {
  if (isAbsolute(target)) return false;
  const resolved = resolve(root, dirname(entryPath), target);
  return resolved === root || !relative(root, resolved).startsWith("..");
}
