// Owns the TypeScript SDK: `new Pyro()` and its camelCase methods. Each method takes one options
// object whose fields are the contract's payload fields and returns the contract's payload, so code
// moves between the SDK, `pyro ... --json` and MCP tool calls without renaming anything.
import {
  type DoctorResult,
  EngineChoice,
  type EnvironmentInspect,
  type EnvironmentList,
  type EnvironmentPruneResult,
  type EnvironmentPullResult,
  RunParams,
  type RunResult,
} from "../contract/schemas.js";
import { LazyManager, type ManagerApi, type ManagerOptions, type ProgressReporter } from "./manager.js";
import { DoctorParams, EnvironmentParams, EnvironmentPullParams } from "./params.js";
import { parseOrThrow } from "./validate.js";

export interface PyroOptions extends ManagerOptions {
  /**
   * @internal An already open manager to call instead of opening one; the caller keeps ownership
   * and `close()` leaves it open. Used by the CLI, the MCP server and tests.
   */
  manager?: ManagerApi;
}

/** Per-call options that are not part of the payload. */
export interface CallOptions {
  /** Aborting stops the command and tears the sandbox down; the call rejects. */
  signal?: AbortSignal;
  /** Told each phase (pull, boot, exec, teardown) as it starts. */
  progress?: ProgressReporter;
}

// Strict copies: a misspelt field (`memMib`) would otherwise be dropped and its default used.
const RunRequest = RunParams.strict();

export class Pyro {
  readonly #manager: LazyManager;

  constructor(options: PyroOptions = {}) {
    const { manager, ...managerOptions } = options;
    if (managerOptions.engine !== undefined) {
      parseOrThrow(EngineChoice, managerOptions.engine, "new Pyro", () => "engine");
    }
    this.#manager = new LazyManager(manager, managerOptions);
  }

  /**
   * Runs one command in a fresh sandbox that is destroyed when the command ends. A command that
   * runs and fails resolves with its `exit_code`; only a failure to run it rejects (PyroError).
   */
  async runInVm(params: RunParams, options: CallOptions = {}): Promise<RunResult> {
    const request = parseOrThrow(RunRequest, params, "runInVm");
    return (await this.#manager.get()).run(request, options);
  }

  /** The environment catalog and which entries are installed locally. */
  async listEnvironments(): Promise<EnvironmentList> {
    return (await this.#manager.get()).listEnvironments();
  }

  /** Builds an environment into the local cache (a no-op when a valid copy is there, unless `force`). */
  async pullEnvironment(
    params: EnvironmentPullParams,
    options: Pick<CallOptions, "progress"> = {},
  ): Promise<EnvironmentPullResult> {
    const request = parseOrThrow(EnvironmentPullParams, params, "pullEnvironment");
    return (await this.#manager.get()).pullEnvironment(request.environment, {
      force: request.force,
      progress: options.progress,
    });
  }

  async inspectEnvironment(params: EnvironmentParams): Promise<EnvironmentInspect> {
    const request = parseOrThrow(EnvironmentParams, params, "inspectEnvironment");
    return (await this.#manager.get()).inspectEnvironment(request.environment);
  }

  /** Removes cached environment builds that no catalog entry uses any more. */
  async pruneEnvironments(): Promise<EnvironmentPruneResult> {
    return (await this.#manager.get()).pruneEnvironments();
  }

  /** Host checks, the engine `auto` would pick and why, and leftovers of crashed sandboxes. */
  async doctor(params: DoctorParams = {}): Promise<DoctorResult> {
    const request = parseOrThrow(DoctorParams, params, "doctor");
    return (await this.#manager.get()).doctor(request);
  }

  /** Releases the runtime this instance opened. Calling a method afterwards opens it again. */
  async close(): Promise<void> {
    await this.#manager.close();
  }
}
