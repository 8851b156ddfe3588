// Owns the OCI runtime spec pyro hands to runsc: the agent as the process, the overlay as a
// writable root, and vcpu/memory/pids limits as linux.resources (cgroups v1 on this host).
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BASE_ENV } from "../../channel/protocol.js";
import { AGENT_ARGV, AGENT_DIR, STATX_SHIM } from "../../environments/inject.js";

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

/** Processes one sandbox may hold at once: enough for builds, low enough to stop a fork bomb. */
export const PIDS_LIMIT = 4096;

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
  /** Host file bind-mounted as the guest's /etc/ld.so.preload (see statxShimPreload). */
  preloadList?: string;
}

/**
 * Writes the preload list for the statx shim into the bundle and returns its path, when the
 * environment's agent has the shim: this runsc refuses statx with AT_NO_AUTOMOUNT, which breaks
 * `ls -l` and `stat` (src/agent/native/statx-compat.c). A bind mount, so the environment's own
 * files stay untouched and only gvisor sandboxes load it.
 */
export async function statxShimPreload(bundleDir: string, rootDir: string): Promise<string | undefined> {
  const shim = `/${AGENT_DIR}/agent/${STATX_SHIM}`;
  if (!existsSync(join(rootDir, shim))) return undefined;
  const list = join(bundleDir, "ld.so.preload");
  await writeFile(list, `${shim}\n`);
  return list;
}

export function buildOciSpec(opts: OciOptions): Record<string, unknown> {
  const period = 100_000;
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: opts.args ?? AGENT_ARGV,
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
      ...(opts.preloadList
        ? [{ destination: "/etc/ld.so.preload", type: "bind", source: opts.preloadList, options: ["rbind", "ro"] }]
        : []),
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
