// Owns the host cgroups pyro makes itself: one per QEMU sandbox (runsc makes gVisor's), named
// `pyro/<id>` like runsc's, with a CPU quota of vcpu_count CPUs and a task limit, on cgroup v1 (one
// directory per controller, as on this machine) or v2 (one directory). Rootless pyro has no cgroup
// of its own to give (docs/engines.md), and a host where writing fails runs the sandbox without
// one, saying so in the sandbox log rather than failing the start.
import { existsSync } from "node:fs";
import { mkdir, readdir, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isRootless } from "../rootless/mode.js";

export const CGROUP_ROOT = "/sys/fs/cgroup";
const PERIOD_US = 100_000;

export interface HostLimits {
  vcpuCount: number;
  /** Tasks (processes and threads) of every process placed in the cgroup. */
  tasks: number;
}

/** Puts `pids` into cgroup pyro/<id> with `limits`; returns what it could not do, if anything. */
export async function placeInCgroup(id: string, pids: number[], limits: HostLimits): Promise<string | undefined> {
  if (isRootless()) return "rootless: no host cgroup";
  const quota = String(limits.vcpuCount * PERIOD_US);
  try {
    if (existsSync(join(CGROUP_ROOT, "cgroup.controllers"))) {
      // v2: the controllers must be enabled on the way down.
      const parent = join(CGROUP_ROOT, "pyro");
      await mkdir(parent, { recursive: true });
      await writeFile(join(CGROUP_ROOT, "cgroup.subtree_control"), "+cpu +pids").catch(() => {});
      await writeFile(join(parent, "cgroup.subtree_control"), "+cpu +pids");
      const dir = join(parent, id);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, "cpu.max"), `${quota} ${PERIOD_US}`);
      await writeFile(join(dir, "pids.max"), String(limits.tasks));
      for (const pid of pids) await writeFile(join(dir, "cgroup.procs"), String(pid));
      return undefined;
    }
    const cpu = join(CGROUP_ROOT, "cpu", "pyro", id);
    const tasks = join(CGROUP_ROOT, "pids", "pyro", id);
    await mkdir(cpu, { recursive: true });
    await mkdir(tasks, { recursive: true });
    await writeFile(join(cpu, "cpu.cfs_period_us"), String(PERIOD_US));
    await writeFile(join(cpu, "cpu.cfs_quota_us"), quota);
    await writeFile(join(tasks, "pids.max"), String(limits.tasks));
    for (const pid of pids) {
      await writeFile(join(cpu, "cgroup.procs"), String(pid));
      await writeFile(join(tasks, "cgroup.procs"), String(pid));
    }
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Removes pyro/<id> under every controller (v1) or the one directory (v2). A cgroup can stay busy
 * for a moment while the kernel reaps its last tasks, hence the retries. */
export async function removeCgroups(id: string): Promise<string[]> {
  const removed: string[] = [];
  const dirs = existsSync(join(CGROUP_ROOT, "cgroup.controllers"))
    ? [join(CGROUP_ROOT, "pyro", id)]
    : (await readdir(CGROUP_ROOT).catch(() => [] as string[])).map((c) => join(CGROUP_ROOT, c, "pyro", id));
  for (const dir of dirs) {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        await rmdir(dir);
        removed.push(dir);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EBUSY") break;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
  return removed;
}
