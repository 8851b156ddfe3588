// Owns the sandbox-init duties the agent has beyond running commands: the filesystems a guest
// needs (proc, sys, dev, devpts) when no engine mounted them, the /workspace directory, the guest
// process limit (limits.ts), and keeping the agent out of the guest OOM killer's reach.
// Zombie reaping belongs to tini, which the agent runs under as PID 1 (see AGENT_ARGV).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { configureProcessLimit, protectFromOom } from "./limits.js";

const MOUNTS: Array<{ target: string; type: string; probe: string; options?: string }> = [
  { target: "/proc", type: "proc", probe: "/proc/self" },
  { target: "/sys", type: "sysfs", probe: "/sys/kernel" },
  { target: "/dev", type: "devtmpfs", probe: "/dev/null" },
  { target: "/dev/pts", type: "devpts", probe: "/dev/pts/ptmx", options: "newinstance,ptmxmode=0666" },
];

export function initSandbox(): string[] {
  const mounted: string[] = [];
  for (const m of MOUNTS) {
    if (existsSync(m.probe)) continue;
    mkdirSync(m.target, { recursive: true });
    const args = ["-t", m.type, m.type, m.target, ...(m.options ? ["-o", m.options] : [])];
    if (spawnSync("mount", args).status === 0) mounted.push(m.target);
  }
  for (const dir of ["/workspace", "/tmp"]) mkdirSync(dir, { recursive: true });
  // Mounted on the first spawn, not here: a VM's init runs this before its image is saved, and
  // a fresh boot's mount(8) hung there (its random pool is not seeded until a restore).
  configureProcessLimit(
    (target) => spawnSync("mount", ["-t", "cgroup", "-o", "pids", "pyro-pids", target]).status === 0,
  );
  protectFromOom();
  return mounted;
}
