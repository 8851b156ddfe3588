// Owns what every CLI command receives besides its flags: the streams, the manager (opened on first
// use, so `pyro --version` never loads the runtime), the interrupt signal and whether stderr is a
// terminal a spinner may draw on.
import type { BaseContext } from "clipanion";
import type { ManagerApi, ManagerOptions } from "../sdk/manager.js";

export interface PyroContext extends BaseContext {
  /** The manager, opened once; `opts` only take effect on the first call in a process. */
  manager(opts?: ManagerOptions): Promise<ManagerApi>;
  /** Aborted on SIGINT/SIGTERM; its reason is the signal name. */
  signal: AbortSignal;
  /** stderr is an interactive terminal: progress may be drawn there. */
  interactive: boolean;
}
