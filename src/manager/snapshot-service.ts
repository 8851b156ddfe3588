// Owns going back: named snapshots of a workspace's /workspace, and reset to the baseline or to a
// snapshot, which rebuilds the sandbox around the restored tree.

import { mkdir, rename, rm } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import type { z } from "zod";
import { PyroError } from "../contract/errors.js";
import type {
  ResetParams,
  ResetResult,
  SnapshotDeleteResult,
  SnapshotInfo,
  SnapshotListResult,
  SnapshotParams,
  WorkspaceRefParams,
} from "../contract/workspace.js";
import { getEngine } from "../engines/index.js";
import { liveSupervisor } from "../supervisor/launch.js";
import { faultPoint } from "../util/fault.js";
import type { WorkspaceRecord } from "./records.js";
import { SnapshotStore } from "./snapshots.js";

import { copyTree, type WorkspaceService } from "./workspaces.js";

export class SnapshotService {
  constructor(private readonly core: WorkspaceService) {}

  async reset(params: z.output<typeof ResetParams>): Promise<ResetResult> {
    const record = await this.core.records.resolve(params.workspace);
    this.core.assertComplete(record);
    await this.core.touch(record.workspace_id);
    const paths = this.core.records.paths(record.workspace_id);
    const source =
      params.snapshot === "baseline"
        ? paths.baselineTree
        : await this.snapshotStore(record)
            .get(params.snapshot)
            .then(() => this.snapshotStore(record).treePath(params.snapshot));
    await this.core.halt(record);
    // A fresh writable layer holding exactly the source tree is built beside the old one and swapped
    // in, so a crash leaves one whole layer or the other; then a fresh sandbox starts on it.
    const engine = getEngine(record.engine);
    const { layer, discard } = engine.resetLayout(paths.sandbox);
    const next = `${layer}.next`;
    const old = `${layer}.old`;
    await rm(next, { recursive: true, force: true });
    const nextLayer = join(next, relative(layer, engine.workspaceLayer(paths.sandbox)));
    await mkdir(dirname(nextLayer), { recursive: true });
    await copyTree(source, nextLayer);
    faultPoint("reset:built");
    await rm(old, { recursive: true, force: true });
    await rename(layer, old).catch(() => {});
    faultPoint("reset:swapping");
    await rename(next, layer);
    for (const path of [old, ...discard]) await rm(path, { recursive: true, force: true });
    await this.core.boot(record, await this.core.deps.ensureEnvironment(record.environment));
    const updated = await this.core.records.mutate(record.workspace_id, (r) => ({
      ...r,
      desired_state: "running",
      expired_at: null,
      reset_count: r.reset_count + 1,
      last_activity_at: new Date().toISOString(),
    }));
    return { workspace_id: record.workspace_id, snapshot: params.snapshot, reset_count: updated.reset_count };
  }

  private snapshotStore(record: WorkspaceRecord): SnapshotStore {
    return new SnapshotStore(this.core.records.paths(record.workspace_id).snapshots);
  }

  /** A running workspace is frozen for the moment its layer is copied, so the snapshot is consistent. */
  async snapshotCreate(params: z.output<typeof SnapshotParams>): Promise<SnapshotInfo> {
    const record = await this.core.records.resolve(params.workspace);
    const paths = this.core.records.paths(record.workspace_id);
    const engine = getEngine(record.engine);
    const store = this.snapshotStore(record);
    const take = (layer: string) => {
      faultPoint("snapshot:frozen");
      return store.create(params.snapshot_name, layer, { shareWith: [paths.baselineTree] });
    };
    const live = await liveSupervisor(paths.sandbox);
    const info = live ? await this.core.withFrozen(record, take) : await take(engine.workspaceLayer(paths.sandbox));
    if (!info) throw new PyroError("INTERNAL", `the ${record.engine} engine cannot snapshot a running workspace`);
    await this.core.touch(record.workspace_id);
    return { workspace_id: record.workspace_id, ...snapshotFields(info) };
  }

  async snapshotList({ workspace }: z.output<typeof WorkspaceRefParams>): Promise<SnapshotListResult> {
    const record = await this.core.records.resolve(workspace);
    const list = await this.snapshotStore(record).list();
    return {
      workspace_id: record.workspace_id,
      count: list.count,
      snapshots: list.snapshots.map((s) => ({ workspace_id: record.workspace_id, ...snapshotFields(s) })),
    };
  }

  async snapshotDelete(params: z.output<typeof SnapshotParams>): Promise<SnapshotDeleteResult> {
    const record = await this.core.records.resolve(params.workspace);
    await this.snapshotStore(record).delete(params.snapshot_name);
    return { workspace_id: record.workspace_id, snapshot_name: params.snapshot_name, deleted: true };
  }
}

function snapshotFields(info: {
  snapshot_name: string;
  created_at: string;
  size_bytes: number;
  file_count: number;
  shared_bytes: number;
}) {
  const { snapshot_name, created_at, size_bytes, file_count, shared_bytes } = info;
  return { snapshot_name, created_at, size_bytes, file_count, shared_bytes };
}
