// Owns finding a host program on PATH (for checks that must not spawn it just to see if it exists).
import { access, constants } from "node:fs/promises";
import { delimiter, isAbsolute, join } from "node:path";

/** `name` on PATH, or `name` itself when it is an absolute path; undefined when not executable. */
export async function findExecutable(name: string): Promise<string | undefined> {
  const candidates = isAbsolute(name)
    ? [name]
    : (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin")
        .split(delimiter)
        .filter(Boolean)
        .map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}
