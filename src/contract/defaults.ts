// Owns the contract's defaults (CONTRACT.md "Defaults"): every face reads them from here.

export const DEFAULTS = {
  environment: "debian:12",
  engine: "auto",
  vcpuCount: 1,
  memMib: 1024,
  /** A workspace's disk: what its guest may write to the host (/workspace, and on gvisor the root's
   * changes too). A sparse image: the host spends only what is written. */
  diskMib: 8192,
  /** `pyro run` and `vm_run`: a one-shot command in a throwaway sandbox, and an MCP call that cannot
   * outlive its client's 60 s request timeout; long work belongs in a workspace. */
  timeoutSeconds: 30,
  /** `workspace exec`: long enough for a real test suite (mocha, pytest, make test: minutes). */
  execTimeoutSeconds: 600,
  /** How long workspace_exec (over MCP) and workspace_exec_wait wait for a command to end before
   * returning it as running with its output so far: well inside MCP clients' 60 s request timeout. */
  execWaitSeconds: 30,
  ttlSeconds: 600,
  networkPolicy: "off",
  shellCols: 120,
  shellRows: 30,
  readMaxBytes: 65_536,
  readinessTimeoutSeconds: 30,
  readinessIntervalMs: 500,
  guestWorkspace: "/workspace",
  /** Cap on each of stdout and stderr returned by one exec. */
  outputMaxBytes: 1_048_576,
  /** How long a sandbox may take from launch to a ready agent. */
  sandboxReadySeconds: 60,
} as const;

export const LIMITS = {
  vcpuCount: { min: 1, max: 64 },
  memMib: { min: 128, max: 262_144 },
  diskMib: { min: 256, max: 16_777_216 },
  timeoutSeconds: { min: 1, max: 86_400 },
  waitSeconds: { min: 0, max: 3_600 },
} as const;

/** Tasks (processes and threads) a sandbox's commands, shells and services may hold at once,
 * counted by the guest's own kernel (limits.ts in the agent); one more fork fails with EAGAIN. */
export const GUEST_TASK_LIMIT = 512;
