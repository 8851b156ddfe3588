// Owns how a face gets hold of the runtime: the slice of Manager the CLI, SDK and MCP server call,
// and a lazy loader so that `pyro --version`, `pyro help` and `import { Pyro }` do not pay for
// loading engines and supervisors they may never use (process start-up is slow on nested hosts).
import type { SERVICE_REQUESTS, SHELL_REQUESTS, TakesParsed, WORKSPACE_REQUESTS } from "../contract/requests.js";
import type { Manager, ManagerOptions, ProgressReporter as PhaseReporter } from "../manager/manager.js";
import type { ServiceService } from "../manager/services.js";
import type { ShellService } from "../manager/shells.js";
import type { WorkspaceOperations } from "../manager/workspace-api.js";

export type { ManagerOptions } from "../manager/manager.js";

/** Hears a call's phases and, for a command that is running, what it prints. */
export interface ProgressReporter extends PhaseReporter {
  /** New output of the running command, redacted (the MCP server relays it as progress). */
  output?(stream: "stdout" | "stderr", text: string): void;
}

/** The workspace-core operations the faces call: each takes its parsed request, returns its payload. */
export type WorkspaceApi = WorkspaceOperations;

/** What the faces use of the manager; tests hand in a fake with this shape. */
export type ManagerApi = Pick<
  Manager,
  | "run"
  | "listEnvironments"
  | "pullEnvironment"
  | "inspectEnvironment"
  | "pruneEnvironments"
  | "doctor"
  | "prepare"
  | "close"
> & {
  readonly workspaces: WorkspaceApi;
  readonly shells: ShellApi;
  readonly services: ServiceApi;
  /** Stops workspaces idle past their TTL; absent in test fakes. */
  reapExpired?(): Promise<string[]>;
};

export type ShellApi = Pick<ShellService, "open" | "read" | "write" | "signal" | "close">;
export type ServiceApi = Pick<ServiceService, "start" | "list" | "status" | "logs" | "stop">;

export async function openManager(opts: ManagerOptions = {}): Promise<ManagerApi> {
  const { Manager } = await import("../manager/manager.js");
  const manager = new Manager(opts);
  // TTL needs no daemon: every process that opens the runtime stops what has expired.
  await manager.reapExpired().catch(() => {});
  return manager;
}

/** Opens the manager once, on first use, and closes it only if it was opened here. */
export class LazyManager {
  private pending: Promise<ManagerApi> | undefined;
  private readonly owned: boolean;

  constructor(
    injected: ManagerApi | undefined,
    private readonly opts: ManagerOptions = {},
  ) {
    this.owned = injected === undefined;
    if (injected) this.pending = Promise.resolve(injected);
  }

  get(): Promise<ManagerApi> {
    this.pending ??= openManager(this.opts);
    return this.pending;
  }

  /** The manager if it has been opened (or injected), without opening it. */
  peek(): Promise<ManagerApi> | undefined {
    return this.pending;
  }

  async close(): Promise<void> {
    const pending = this.pending;
    if (!this.owned || pending === undefined) return;
    this.pending = undefined;
    // A manager that failed to open was already reported to whoever called get().
    const manager = await pending.catch(() => undefined);
    await manager?.close();
  }
}

// The manager takes requests as the table parses them: a face that parses with contract/requests.ts
// can call it, and an operation whose signature drifts from its schema fails to compile here.
type Holds<T extends true> = T;
export type RequestTablesHold = [
  Holds<WorkspaceApi extends TakesParsed<typeof WORKSPACE_REQUESTS> ? true : false>,
  Holds<ShellApi extends TakesParsed<typeof SHELL_REQUESTS> ? true : false>,
  Holds<ServiceApi extends TakesParsed<typeof SERVICE_REQUESTS> ? true : false>,
];
