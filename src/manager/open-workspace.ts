// Owns one workspace as an operation holds it: the record it resolved, and the sandbox's typed
// agent client, the redactor, the environment of secrets and the activity clock, all bound to that
// record. Every job service (exec, files, trees, snapshots, disk, shells, services) works through
// one of these instead of passing the record back to the lifecycle service at each step.
import type { SupervisorClient } from "../supervisor/client.js";
import type { RecordStore, WorkspacePaths, WorkspaceRecord } from "./records.js";
import type { Redactor } from "./redact.js";
import type { WorkspaceSandboxes } from "./sandboxes.js";
import type { WorkspaceSecrets } from "./workspace-secrets.js";

/** What a handle needs of the lifecycle service (WorkspaceService), which opens it. */
export interface WorkspaceCore {
  readonly records: RecordStore;
  readonly secrets: WorkspaceSecrets;
  readonly sandboxes: WorkspaceSandboxes;
  touch(id: string): Promise<void>;
}

export class OpenWorkspace {
  constructor(
    private readonly core: WorkspaceCore,
    readonly record: WorkspaceRecord,
  ) {}

  get id(): string {
    return this.record.workspace_id;
  }

  get paths(): WorkspacePaths {
    return this.core.records.paths(this.id);
  }

  /** The running sandbox's client; WORKSPACE_NOT_RUNNING (with why, and the fix) when it is not. */
  client(): Promise<SupervisorClient> {
    return this.core.sandboxes.client(this.record);
  }

  /** What every value crossing back to the caller passes through. */
  redactor(): Promise<Redactor> {
    return this.core.secrets.redactor(this.record);
  }

  /** Runs fn and redacts the message of any error it throws. */
  async redacting<T>(fn: () => Promise<T>): Promise<T> {
    return this.core.secrets.redacting(await this.redactor(), fn);
  }

  /** Runs fn, then redacts every string of its result or of its error. */
  redactingAll<T>(fn: () => Promise<T>): Promise<T> {
    return this.core.secrets.redactingAll(this.record, fn);
  }

  /** The guest environment a call's `secret_env` mapping asks for. */
  environment(mapping: Record<string, string>): Promise<Record<string, string>> {
    return this.core.secrets.environment(this.record, mapping);
  }

  /** Counts as activity: pushes the TTL's expiry out. */
  touch(): Promise<void> {
    return this.core.touch(this.id);
  }
}
