// Owns the check that a sandbox's shape fits the host it would run on: no more vCPUs than the host
// has CPUs, no more memory than it has, no larger disk than the file system that holds the state. The
// contract's own ranges (1-64 vCPUs, 128-262144 MiB of memory, 256 MiB-16 TiB of disk) hold
// everywhere; this narrows them to the machine, so a request it could never honour fails at once.
import { availableParallelism, totalmem } from "node:os";
import { PyroError } from "../contract/errors.js";
import { filesystemBytes } from "./layer-disk.js";

export interface HostShape {
  cpus: number;
  memMib: number;
}

export function hostShape(): HostShape {
  return { cpus: availableParallelism(), memMib: Math.floor(totalmem() / (1024 * 1024)) };
}

/** Throws INVALID_ARGUMENT naming the field, the host's figure and the largest value that fits. */
export function checkFitsHost(shape: { vcpu_count: number; mem_mib: number }, host: HostShape = hostShape()): void {
  if (shape.vcpu_count > host.cpus) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `vcpu_count ${shape.vcpu_count} is more than this host's ${host.cpus} CPUs; use at most ${host.cpus}`,
    );
  }
  if (shape.mem_mib > host.memMib) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `mem_mib ${shape.mem_mib} is more than this host's ${host.memMib} MiB of memory; use at most ${host.memMib}`,
    );
  }
}

/** A disk larger than the file system that would hold it could never be honoured. */
export async function checkDiskFitsHost(diskMib: number, stateDir: string): Promise<void> {
  const hostMib = Math.floor((await filesystemBytes(stateDir)) / (1024 * 1024));
  if (diskMib > hostMib) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `disk_mib ${diskMib} is more than the ${hostMib} MiB file system holding ${stateDir}; use at most ${hostMib}`,
    );
  }
}
