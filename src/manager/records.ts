// Owns workspace records on disk: the layout of a workspace's directory, atomic record writes under
// a per-workspace lock, the command log, and finding a workspace by id or unique name.

import { randomBytes } from "node:crypto";
import { appendFile, link, mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PyroError } from "../contract/errors.js";
import type { EngineName } from "../contract/schemas.js";
import {
  type CommandLogEntry,
  type NetworkPolicy,
  type NetworkRules,
  type SecretMeta,
  WORKSPACE_ID_PATTERN,
} from "../contract/workspace.js";
import type { HostProxy } from "../egress/host-proxy.js";
import { acquireLock, type LockHandle } from "../environments/lock.js";

export const LAYOUT_VERSION = 1;

/** What is persisted for a workspace. Secrets never appear here (they get a 0600 file of their own). */
export interface WorkspaceRecord {
  layout_version: number;
  workspace_id: string;
  name: string | null;
  labels: Record<string, string>;
  environment: string;
  engine: EngineName;
  vcpu_count: number;
  mem_mib: number;
  /** The disk's size, or null (or absent, from before disks) when the host could not limit it. */
  disk_mib?: number | null;
  ttl_seconds: number;
  network_policy: NetworkPolicy;
  /** Network policy allowlist's rules, as the user wrote them (presets expanded). */
  network_rules?: NetworkRules;
  /** What create added to the guest's trust store; the PEM itself is `trusted-ca.pem` beside it. */
  trusted_ca?: { certificates: number; sources: string[] };
  /** host_proxy's settings as status shows them (a password masked); whole in `host-proxy.json` (0600). */
  host_proxy?: HostProxy;
  workspace_seed: {
    mode: "empty" | "directory" | "tar_archive";
    seed_path: string | null;
    entry_count?: number;
    skipped?: string[];
  };
  created_at: string;
  last_activity_at: string;
  /** What the user last asked for; the truth about running comes from the supervisor. */
  desired_state: "running" | "stopped";
  command_count: number;
  reset_count: number;
  exports: Array<{ workspace_path: string; output_path: string; at: string }>;
  /** Names and kinds only; the values live in `secrets.json` (mode 0600) beside the record. */
  secrets?: SecretMeta[];
  /** Set when the TTL reaper stopped the workspace (its state reads `expired` until started). */
  expired_at?: string | null;
  /** True from the first write of create until it finishes. */
  incomplete?: boolean;
}

export interface WorkspacePaths {
  dir: string;
  record: string;
  /** The record as it was before the last write: read when the record itself is damaged. */
  previous: string;
  commands: string;
  /** Network policy allowlist: the gateway's decisions, one JSON line each. */
  networkLog: string;
  /** The CA certificates the guest trusts besides its own bundle (PEM), when create named any. */
  trustedCa: string;
  /** The workspace's egress CA (secrets bound to hosts): the guest trusts it; the key stays here. */
  egressCaCert: string;
  egressCaKey: string;
  /** The host's proxy settings (host_proxy), whole: a proxy URL may hold a password. */
  hostProxy: string;
  baselineTree: string;
  /** The baseline's manifest, a TreeEntry per line in tree order. */
  baselineManifest: string;
  /** The manifest as one JSON array, written by pyro before 2026-12: read when the other is absent. */
  legacyBaselineManifest: string;
  /** The digests of the layer's files with the stat each was taken at, so diff hashes what changed. */
  layerIndex: string;
  sandbox: string;
  secrets: string;
  snapshots: string;
  lock: string;
}

export class RecordStore {
  readonly root: string;

  constructor(stateDir: string) {
    this.root = join(stateDir, "workspaces");
  }

  paths(id: string): WorkspacePaths {
    const dir = join(this.root, id);
    return {
      dir,
      record: join(dir, "workspace.json"),
      previous: join(dir, "workspace.json.prev"),
      commands: join(dir, "commands.jsonl"),
      networkLog: join(dir, "network.log"),
      trustedCa: join(dir, "trusted-ca.pem"),
      egressCaCert: join(dir, "egress-ca.pem"),
      egressCaKey: join(dir, "egress-ca.key"),
      hostProxy: join(dir, "host-proxy.json"),
      baselineTree: join(dir, "baseline", "tree"),
      baselineManifest: join(dir, "baseline", "manifest.ndjson"),
      legacyBaselineManifest: join(dir, "baseline", "manifest.json"),
      layerIndex: join(dir, "layer-index.ndjson"),
      sandbox: join(dir, "sandbox"),
      secrets: join(dir, "secrets.json"),
      snapshots: join(dir, "snapshots"),
      lock: join(dir, ".lock"),
    };
  }

  newId(): string {
    return `ws-${randomBytes(5).toString("hex")}`;
  }

  /**
   * The record, or undefined when the workspace does not exist. A record damaged by something other
   * than pyro (a truncated or garbled file: pyro itself only ever renames whole ones into place) is
   * read from the copy kept by the write before, so the workspace stays listed, usable and named.
   */
  async read(id: string): Promise<WorkspaceRecord | undefined> {
    return (await this.load(id)).record;
  }

  /** A record, none (the workspace does not exist), or why it and its previous copy are unreadable. */
  private async load(id: string): Promise<{ record?: WorkspaceRecord; problem?: string }> {
    const { record, previous } = this.paths(id);
    const current = await readRecordFile(record);
    if (current.ok) return { record: current.record };
    if (current.missing) return {};
    const fallback = await readRecordFile(previous);
    return fallback.ok ? { record: fallback.record } : { problem: `${record} is unreadable (${current.problem})` };
  }

  /** Every readable record, and the workspaces whose record and its previous copy are both
   * unreadable: shown by list and doctor, never silently dropped. One read of each record. */
  async scan(): Promise<{ records: WorkspaceRecord[]; damaged: Array<{ workspace_id: string; problem: string }> }> {
    const records: WorkspaceRecord[] = [];
    const damaged: Array<{ workspace_id: string; problem: string }> = [];
    for (const [id, loaded] of await Promise.all(
      (await this.ids()).map(async (id) => [id, await this.load(id)] as const),
    )) {
      if (loaded.record) records.push(loaded.record);
      else if (loaded.problem) damaged.push({ workspace_id: id, problem: loaded.problem });
    }
    return { records, damaged };
  }

  async damaged(): Promise<Array<{ workspace_id: string; problem: string }>> {
    return (await this.scan()).damaged;
  }

  /**
   * Temp file + rename: a crash leaves the old record or the new one, never half of one. The record
   * it replaces stays beside it as workspace.json.prev (hard-linked, so the record is never missing).
   * Not write-file-atomic: its extra checks cost ~2 ms a write, and a record is written twice per
   * exec (measured: +5 ms on every workspace exec).
   */
  async write(record: WorkspaceRecord): Promise<void> {
    const { dir, record: path, previous } = this.paths(record.workspace_id);
    await mkdir(dir, { recursive: true });
    const suffix = `${process.pid}.${randomBytes(3).toString("hex")}.tmp`;
    const tmp = `${path}.${suffix}`;
    await writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`);
    const keep = `${previous}.${suffix}`;
    await link(path, keep).then(
      () => rename(keep, previous),
      (err: NodeJS.ErrnoException) => {
        if (err.code !== "ENOENT") throw err;
      },
    );
    await rename(tmp, path);
  }

  private async ids(): Promise<string[]> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    return names.filter((id) => !id.startsWith("."));
  }

  async all(): Promise<WorkspaceRecord[]> {
    return (await this.scan()).records;
  }

  /** A workspace is named by its id or its unique name, everywhere. */
  async resolve(ref: string): Promise<WorkspaceRecord> {
    // Only an id's shape is read as a directory name: `..` or `.` never reaches the file system.
    const byId = WORKSPACE_ID_PATTERN.test(ref) ? await this.read(ref) : undefined;
    if (byId) return byId;
    const byName = (await this.all()).find((r) => r.name === ref);
    if (byName) return byName;
    throw new PyroError(
      "WORKSPACE_NOT_FOUND",
      `no workspace has the id or name "${ref}"; list them with pyro workspace list (workspace_list)`,
    );
  }

  lock(id: string): Promise<LockHandle> {
    return acquireLock(this.paths(id).lock, { timeoutMs: 60_000, pollMs: 5 });
  }

  /** Serialises name assignment across processes so two creates cannot take the same name. */
  namesLock(): Promise<LockHandle> {
    return mkdir(this.root, { recursive: true }).then(() =>
      acquireLock(join(this.root, ".names.lock"), { timeoutMs: 60_000, pollMs: 5 }),
    );
  }

  async assertNameFree(name: string, except?: string): Promise<void> {
    const holder = (await this.all()).find((r) => r.name === name && r.workspace_id !== except);
    if (holder) {
      throw new PyroError(
        "WORKSPACE_NAME_TAKEN",
        `the name "${name}" is taken by workspace ${holder.workspace_id}; choose another name or delete that workspace`,
      );
    }
  }

  /** Runs fn on the current record under the workspace's lock and writes what it returns. */
  async mutate(
    id: string,
    fn: (r: WorkspaceRecord) => WorkspaceRecord | Promise<WorkspaceRecord>,
  ): Promise<WorkspaceRecord> {
    const lock = await this.lock(id);
    try {
      const current = await this.read(id);
      if (!current) throw new PyroError("WORKSPACE_NOT_FOUND", `workspace ${id} was deleted`);
      const next = await fn(current);
      await this.write(next);
      return next;
    } finally {
      await lock.release();
    }
  }

  async appendCommand(id: string, entry: CommandLogEntry): Promise<void> {
    await appendFile(this.paths(id).commands, `${JSON.stringify(entry)}\n`);
  }

  async commands(id: string): Promise<CommandLogEntry[]> {
    try {
      const text = await readFile(this.paths(id).commands, "utf8");
      return text
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as CommandLogEntry);
    } catch {
      return [];
    }
  }
}

type RecordRead = { ok: true; record: WorkspaceRecord } | { ok: false; missing: boolean; problem: string };

async function readRecordFile(path: string): Promise<RecordRead> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
    return { ok: false, missing, problem: (err as Error).message };
  }
  try {
    const record = JSON.parse(text) as WorkspaceRecord;
    if (typeof record?.workspace_id !== "string")
      return { ok: false, missing: false, problem: "no workspace_id in it" };
    return { ok: true, record };
  } catch (err) {
    return { ok: false, missing: false, problem: (err as Error).message };
  }
}
