// Owns removing a test's state dir: a workspace the test left (stopped, or never deleted) keeps its
// disk mounted (src/manager/layer-disk.ts), and a mounted directory cannot be removed, so its mounts
// are detached first, deepest first.
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";

export function removeStateDir(dir: string): void {
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .filter((mount) => mount.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const mount of mounts) {
    try {
      execFileSync("umount", ["-l", mount], { stdio: "ignore" });
    } catch {}
  }
  rmSync(dir, { recursive: true, force: true });
}
