// Owns host mounts made for sandboxes (overlay roots): making them, finding them in mountinfo,
// and taking them down even when something still holds them busy.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { PyroError } from "../contract/errors.js";

const run = promisify(execFile);

/** Mount points currently listed in /proc/self/mountinfo (octal escapes decoded). */
export async function listMounts(): Promise<string[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) =>
      line.split(" ")[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))),
    );
}

export async function isMounted(path: string): Promise<boolean> {
  return (await listMounts()).includes(path);
}

export async function mountOverlay(lower: string, upper: string, work: string, target: string): Promise<void> {
  for (const p of [lower, upper, work]) {
    if (/[,:]/.test(p)) throw new PyroError("INVALID_ARGUMENT", `overlay path ${p} must not contain ',' or ':'`);
  }
  try {
    await run("mount", [
      "-t",
      "overlay",
      "overlay",
      "-o",
      `lowerdir=${lower},upperdir=${upper},workdir=${work}`,
      target,
    ]);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim() ?? String(err);
    throw new PyroError(
      "SANDBOX_START_FAILED",
      `could not mount the sandbox's overlay root at ${target}: ${stderr}. pyro needs root and overlayfs (modprobe overlay)`,
    );
  }
}

/** Unmounts, falling back to a lazy detach so a stuck reader never leaves the mount behind. */
export async function unmount(target: string): Promise<boolean> {
  if (!(await isMounted(target))) return false;
  try {
    await run("umount", [target]);
  } catch {
    await run("umount", ["-l", target]).catch(() => {});
  }
  return true;
}
