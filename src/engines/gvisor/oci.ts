// Owns the OCI runtime spec pyro hands to runsc: the agent as the process, the overlay as a
// writable root, and vcpu/memory/pids limits as linux.resources (cgroups v1 on this host).
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { BASE_ENV } from "../../channel/protocol.js";
import { GATEWAY_NET } from "../../egress/addresses.js";
import { AGENT_ARGV, AGENT_DIR, STATX_SHIM } from "../../environments/inject.js";
import { isRootless } from "../../rootless/mode.js";
import type { NetworkPolicy } from "../types.js";

const TASKSET = "/usr/bin/taskset";

const CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_RAW",
  "CAP_NET_ADMIN",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_ADMIN",
  "CAP_SYS_RESOURCE",
  "CAP_MKNOD",
  "CAP_AUDIT_WRITE",
  "CAP_SETFCAP",
];

/** Rootless pyro may not make cgroups on this host (no delegation), so runsc is told not to:
 * the sandbox then runs without the memory, pids and CPU limits (doctor and docs/engines.md say so). */
export function runscCgroupFlags(): string[] {
  return isRootless() ? ["--ignore-cgroups"] : [];
}

/** Host tasks one sandbox may hold at once. Under the ptrace platform each guest process costs
 * about nine host tasks, so this sits well above GUEST_TASK_LIMIT x 9: the guest's own limit is the
 * one a fork storm meets (EAGAIN inside), and this one only backs it up. */
export const PIDS_LIMIT = 8192;

export interface OciOptions {
  id: string;
  rootPath: string;
  vcpuCount: number;
  memMib: number;
  hostname?: string;
  /** Join the network namespace runsc runs in (egress through slirp4netns) instead of a new one. */
  hostNetwork?: boolean;
  /** The container's process; defaults to the guest agent under tini. */
  args?: readonly string[];
  cwd?: string;
  env?: Record<string, string>;
  /** Host files bind-mounted read-only over guest paths (see gvisorGuestFiles). */
  guestFiles?: readonly GuestFile[];
}

export interface GuestFile {
  /** The path inside the sandbox. */
  destination: string;
  /** The host file shown there. */
  source: string;
}

/** apt drives dpkg through a pseudo-terminal it makes the controlling terminal of dpkg's session;
 * this runsc refuses that TIOCSCTTY (gVisor issues 796, 9642), and every apt run printed
 * "E: Setting TIOCSCTTY for slave fd N failed!". Without the pty apt works and says nothing. */
const APT_NO_PTY = { destination: "/etc/apt/apt.conf.d/99pyro-gvisor-no-pty", text: 'Dpkg::Use-Pty "0";\n' };

/**
 * Files that work around this runsc's gaps, written into the bundle and bind-mounted over the
 * guest's paths, so the environment's own files stay untouched and only gvisor sandboxes see them:
 * - /etc/ld.so.preload with the statx shim, when the environment's agent has it: this runsc refuses
 *   statx with AT_NO_AUTOMOUNT, which breaks `ls -l` and `stat` (src/agent/native/statx-compat.c);
 * - an apt setting that keeps dpkg off a pseudo-terminal, where the environment has apt.
 */
export async function gvisorGuestFiles(
  bundleDir: string,
  rootDir: string,
  network: NetworkPolicy = "off",
): Promise<GuestFile[]> {
  const files: GuestFile[] = [];
  if (network === "allowlist") {
    // The egress gateway's resolver is the sandbox's only nameserver.
    const source = join(bundleDir, "resolv.conf");
    await writeFile(source, `nameserver ${GATEWAY_NET.resolver}\n`);
    files.push({ destination: "/etc/resolv.conf", source });
  }
  const shim = `/${AGENT_DIR}/agent/${STATX_SHIM}`;
  if (existsSync(join(rootDir, shim))) {
    const source = join(bundleDir, "ld.so.preload");
    await writeFile(source, `${shim}\n`);
    files.push({ destination: "/etc/ld.so.preload", source });
  }
  if (existsSync(join(rootDir, dirname(APT_NO_PTY.destination)))) {
    const source = join(bundleDir, "apt-no-pty.conf");
    await writeFile(source, APT_NO_PTY.text);
    files.push({ destination: APT_NO_PTY.destination, source });
  }
  return files;
}

/**
 * gVisor shows a sandbox every CPU of the host whatever its CPU quota (runsc's --cpu-num-from-quota
 * would still show at least two). So the sandbox's first process starts pinned to the first
 * `vcpuCount` of them and everything it starts inherits that: nproc, os.availableParallelism(),
 * Python's os.sched_getaffinity and `make -j$(nproc)` see what the sandbox was given.
 * /proc/cpuinfo and os.cpu_count() still count them all (docs/engines.md). Every Debian root has
 * taskset (util-linux is essential); a root without it runs unpinned.
 */
export function pinnedToVcpus(
  args: readonly string[],
  vcpuCount: number,
  rootPath: string,
  hostCpus = availableParallelism(),
) {
  if (vcpuCount >= hostCpus || !existsSync(join(rootPath, TASKSET))) return args;
  return [TASKSET, "--cpu-list", vcpuCount === 1 ? "0" : `0-${vcpuCount - 1}`, ...args];
}

export function buildOciSpec(opts: OciOptions): Record<string, unknown> {
  const period = 100_000;
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: pinnedToVcpus(opts.args ?? AGENT_ARGV, opts.vcpuCount, opts.rootPath),
      env: Object.entries({ ...BASE_ENV, ...opts.env }).map(([k, v]) => `${k}=${v}`),
      cwd: opts.cwd ?? "/",
      capabilities: {
        bounding: CAPABILITIES,
        effective: CAPABILITIES,
        permitted: CAPABILITIES,
        inheritable: CAPABILITIES,
      },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1_048_576, soft: 1_048_576 }],
    },
    root: { path: opts.rootPath, readonly: false },
    hostname: opts.hostname ?? "pyro",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      {
        destination: "/dev",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
      },
      {
        destination: "/dev/pts",
        type: "devpts",
        source: "devpts",
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
      },
      {
        destination: "/dev/shm",
        type: "tmpfs",
        source: "shm",
        options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
      },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      ...(opts.guestFiles ?? []).map((f) => ({ ...f, type: "bind", options: ["rbind", "ro"] })),
    ],
    linux: {
      cgroupsPath: `/pyro/${opts.id}`,
      namespaces: [
        { type: "pid" },
        { type: "ipc" },
        { type: "uts" },
        { type: "mount" },
        ...(opts.hostNetwork ? [] : [{ type: "network" }]),
      ],
      resources: {
        memory: { limit: opts.memMib * 1024 * 1024 },
        pids: { limit: PIDS_LIMIT },
        cpu: { quota: opts.vcpuCount * period, period },
      },
    },
  };
}
