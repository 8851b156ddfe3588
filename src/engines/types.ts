// Owns the one interface every engine (gvisor, qemu, firecracker) implements. Nothing above
// src/engines knows which engine runs: the supervisor gets a byte stream to the agent, an exit
// promise and a stop function, whatever boots underneath.
import type { Duplex } from "node:stream";
import type { Channel } from "../channel/channel.js";
import type { AgentExecResult } from "../channel/protocol.js";
import type { DoctorResult, EngineName } from "../contract/schemas.js";
import type { InstalledEnvironment } from "../environments/index.js";

/** The directory of a sandbox's run dir that holds every layer the guest writes to the host (the
 * manager makes it a disk of the workspace's size: manager/layer-disk.ts). */
export const DISK_DIR = "disk";

export type DoctorCheck = DoctorResult["checks"][number];

export type NetworkPolicy = "off" | "egress" | "egress+published-ports" | "allowlist";

export interface SandboxSpec {
  /** Unique id of this sandbox on the host (also the container/VM name). */
  id: string;
  /** Host directory the sandbox owns: its writable layer, sockets, logs, engine state. */
  runDir: string;
  environment: InstalledEnvironment;
  vcpuCount: number;
  memMib: number;
  network: NetworkPolicy;
  /** Engine diagnostics go here (the supervisor's log), never to the caller's stdout. */
  log: (line: string) => void;
}

export interface SandboxExit {
  code: number | null;
  signal: string | null;
  /** Why the sandbox ended when nobody asked it to (out of memory, killed), in words for the user. */
  reason?: string;
}

export interface Sandbox {
  readonly engine: EngineName;
  /** The byte stream to the guest agent. */
  readonly channel: Duplex;
  /** Settles once when the sandbox is gone, however it went. */
  readonly exited: Promise<SandboxExit>;
  /** Runs once the agent has said hello, before anyone else is served (a restored VM takes on an
   * identity of its own and mounts its /workspace here). */
  setup?(agent: Channel): Promise<void>;
  /** The network namespace the sandbox's traffic leaves from, when it has one (the egress gateway
   * binds its sockets there under network policy allowlist). */
  readonly netnsPath?: string;
  /** Host processes that make up the sandbox, for liveness checks and leak assertions. */
  pids(): number[];
  /** Publishes 127.0.0.1:hostPort on the host (0 = pick a free port) to guestPort in the sandbox;
   * absent when the sandbox has no network to publish from (policy off). */
  publishPort?(hostPort: number, guestPort: number): Promise<{ id: number; host_port: number }>;
  unpublishPort?(id: number): Promise<void>;
  /** Stops the sandbox and releases every runtime resource (processes, mounts, network); idempotent.
   * The writable layer in runDir is kept: deleting it is the owner's decision. */
  stop(): Promise<void>;
}

/** One command in a sandbox that lives exactly as long as the command (a one-shot run). */
export interface OneShotExec {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
  maxOutputBytes: number;
  /** Output as it arrives, already within the cap (stream 1 stdout, 2 stderr). */
  onData: (stream: number, chunk: Buffer) => void;
  signal?: AbortSignal;
}

export interface EngineProbe {
  available: boolean;
  detail: string;
  /** False when the engine runs only when asked for by name, never as `auto`'s pick. */
  auto?: boolean;
}

export interface Engine {
  readonly name: EngineName;
  probe(): Promise<EngineProbe>;
  start(spec: SandboxSpec): Promise<Sandbox>;
  /** Builds what this engine boots from an environment (called by `pyro env pull`); the result is
   * recorded in the environment's manifest. */
  prepareEnvironment?(environment: InstalledEnvironment): Promise<Record<string, unknown>>;
  /** `pyro env prune`: removes what this engine cached that no environment or sandbox uses any more
   * (`sandboxDirs`: every sandbox run dir on the host, running or not). */
  pruneCache?(
    environments: InstalledEnvironment[],
    sandboxDirs: string[],
  ): Promise<{ removed: string[]; freed_bytes: number }>;
  /** Runs one command in a fresh sandbox and releases everything before returning. gvisor runs the
   * command as the container itself, so a one-shot run pays for nothing only persistent sandboxes
   * need (no supervisor, no agent); a microVM engine would boot and exec through its agent. */
  runOnce(spec: SandboxSpec, exec: OneShotExec): Promise<AgentExecResult>;
  /** The host directory holding the guest's /workspace while the sandbox is not running, so a
   * workspace can be seeded, reset and copied at host speed before its sandbox starts. It lies in
   * the run dir's DISK_DIR, with every other layer the guest writes to the host. */
  workspaceLayer(runDir: string): string;
  /** What a reset removes besides the disk (which it replaces whole with one holding only the new
   * /workspace): the rest of the sandbox's writable state, so the next start is a fresh sandbox. */
  resetDiscards(runDir: string): string[];
  /** Runs fn with the running sandbox frozen and its /workspace readable on the host at `layer`
   * (frozen, so a guest cannot swap files for links mid-read), or returns undefined when this
   * engine cannot expose a running sandbox's files (the caller then asks the agent). `discard` is a
   * path fn makes that a later thaw removes if this process dies inside fn. */
  withFrozenWorkspace<T>(
    id: string,
    runDir: string,
    fn: (layer: string) => Promise<T>,
    discard?: string,
  ): Promise<T | undefined>;
  /** Where the host may add to a running sandbox's /workspace while it is frozen (sync push stages
   * there), so the guest sees what was added. */
  workspaceWritable(runDir: string): string;
  /** Resumes a sandbox left frozen by a process that died inside withFrozenWorkspace. */
  thawAbandoned(id: string, runDir: string): Promise<void>;
  /** Releases what a dead owner left behind for this sandbox; returns what it cleaned. */
  cleanup(id: string, runDir: string): Promise<string[]>;
  /** What a dead owner left behind for this sandbox, found without touching it (`pyro doctor`);
   * `host` is the host's mounts and namespaces, read once for every sandbox. */
  leftovers(id: string, runDir: string, host: { mounts: string[]; namespaces: string[] }): string[];
  /** The host programs and devices this engine needs beyond the sandbox network every engine
   * shares (networkChecks), for `pyro doctor`; `probe` is this engine's probe of the same call. */
  doctorChecks(probe: EngineProbe): Promise<DoctorCheck[]>;
}
