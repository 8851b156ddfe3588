// Owns the guest's own limits on what the agent starts. Every command, shell and service is born
// in a pids cgroup of the guest kernel (gVisor's or the VM's, cgroup v1) whose `pids.max` is
// GUEST_TASK_LIMIT, so a fork storm gets EAGAIN inside the guest instead of ending the sandbox
// (gVisor: the host's pids cgroup counts host threads) or starving the agent (QEMU). And the agent
// is the guest OOM killer's last choice while what it starts is an ordinary candidate.
//
// The agent itself stays outside both: children are born in the cgroup of the thread that forks
// them and inherit its oom_score_adj, and cgroup v1 moves single threads, so the spawning thread
// steps into the limited cgroup (and to an ordinary OOM score) for the spawn and back out. Not even
// the first fork of a command escapes the count.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GUEST_TASK_LIMIT } from "../contract/defaults.js";

// Not under /sys/fs/cgroup: sysfs answers mkdir with ENOENT, on which Node's recursive mkdir
// retries forever (a VM's agent spun there).
const MOUNT_POINT = "/run/pyro-cgroup/pids";
const OOM_SCORE_ADJ = "/proc/self/oom_score_adj";

interface PidsCgroup {
  root: string;
  work: string;
}

let mountPids: ((target: string) => boolean) | undefined;
let cgroup: PidsCgroup | null | undefined;
let oomProtected = false;

/** Says how to mount a cgroup v1 pids hierarchy; the mount itself waits for the first spawn. */
export function configureProcessLimit(mount: (target: string) => boolean): void {
  mountPids = mount;
}

/** Makes the agent the OOM killer's last choice (where the guest kernel lets it). */
export function protectFromOom(): void {
  try {
    writeFileSync(OOM_SCORE_ADJ, "-1000");
    oomProtected = true;
  } catch {}
}

function setUp(mount: (target: string) => boolean): PidsCgroup | null {
  try {
    mkdirSync(MOUNT_POINT, { recursive: true });
    if (mount(MOUNT_POINT)) {
      const work = join(MOUNT_POINT, "pyro-work");
      mkdirSync(work, { recursive: true });
      writeFileSync(join(work, "pids.max"), String(GUEST_TASK_LIMIT));
      return { root: MOUNT_POINT, work };
    }
  } catch {}
  // A guest kernel without a pids controller runs without the limit.
  return null;
}

/** Runs `spawn` with the calling thread (Node's main thread, whose id is the pid) in the limited
 * cgroup and at an ordinary OOM score, so what it starts has both from its first instruction. */
export function inLimitedCgroup<T>(spawn: () => T): T {
  if (cgroup === undefined && mountPids) cgroup = setUp(mountPids);
  const tid = String(process.pid);
  const enter = (file: string, value: string) => {
    try {
      writeFileSync(file, value);
      return true;
    } catch {
      return false;
    }
  };
  const moved = cgroup ? enter(join(cgroup.work, "tasks"), tid) : false;
  const unprotected = oomProtected && enter(OOM_SCORE_ADJ, "0");
  try {
    return spawn();
  } finally {
    if (unprotected) enter(OOM_SCORE_ADJ, "-1000");
    if (moved && cgroup) enter(join(cgroup.root, "tasks"), tid);
  }
}
