// Owns finding a host program on PATH (for checks that must not spawn it just to see if it exists).
import { access, constants } from "node:fs/promises";
import { delimiter, join } from "node:path";

export async function findExecutable(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}
