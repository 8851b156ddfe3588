// Owns going back: named snapshots of a workspace's /workspace, and reset to the baseline or to a
// snapshot, which rebuilds the sandbox around the restored tree.

import { mkdir, rm } from "node:fs/promises";
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
import { diskPaths, replaceDisk } from "./layer-disk.js";
import type { OpenWorkspace } from "./open-workspace.js";
import { copyTree } from "./sandboxes.js";
import { SnapshotStore } from "./snapshots.js";
import type { WorkspaceService } from "./workspaces.js";

export class SnapshotService {
  constructor(private readonly core: WorkspaceService) {}

  async reset(params: z.output<typeof ResetParams>): Promise<ResetResult> {
    const ws = await this.core.open(params.workspace);
    this.core.assertComplete(ws.record);
    await ws.touch();
    const paths = ws.paths;
    const source =
      params.snapshot === "baseline"
        ? paths.baselineTree
        : await this.snapshotStore(ws)
            .get(params.snapshot)
            .then(() => this.snapshotStore(ws).treePath(params.snapshot));
    await this.core.sandboxes.halt(ws.record);
    // A fresh disk holding exactly the source tree as /workspace is built beside the old one and
    // swapped in, so a crash leaves one whole disk or the other; then a fresh sandbox starts on it.
    const engine = getEngine(ws.record.engine);
    const disk = diskPaths(paths.sandbox).dir;
    const relativeLayer = relative(disk, engine.workspaceLayer(paths.sandbox));
    await replaceDisk(
      paths.sandbox,
      ws.record.disk_mib ?? null,
      async (next) => {
        const nextLayer = join(next, relativeLayer);
        await mkdir(dirname(nextLayer), { recursive: true });
        await copyTree(source, nextLayer);
        faultPoint("reset:built");
      },
      () => faultPoint("reset:swapping"),
    );
    for (const path of engine.resetDiscards(paths.sandbox)) await rm(path, { recursive: true, force: true });
    await this.core.sandboxes.boot(ws.record, await this.core.deps.ensureEnvironment(ws.record.environment));
    const updated = await this.core.records.mutate(ws.id, (r) => ({
      ...r,
      desired_state: "running",
      expired_at: null,
      reset_count: r.reset_count + 1,
      last_activity_at: new Date().toISOString(),
    }));
    return { workspace_id: ws.id, snapshot: params.snapshot, reset_count: updated.reset_count };
  }

  private snapshotStore(ws: OpenWorkspace): SnapshotStore {
    return new SnapshotStore(ws.paths.snapshots);
  }

  /** A running workspace is frozen for the moment its layer is copied, so the snapshot is consistent. */
  async snapshotCreate(params: z.output<typeof SnapshotParams>): Promise<SnapshotInfo> {
    const ws = await this.core.open(params.workspace);
    const paths = ws.paths;
    const engine = getEngine(ws.record.engine);
    const store = this.snapshotStore(ws);
    const take = (layer: string) => {
      faultPoint("snapshot:frozen");
      return store.create(params.snapshot_name, layer, { shareWith: [paths.baselineTree] });
    };
    const live = await liveSupervisor(paths.sandbox);
    const info = live
      ? await this.core.sandboxes.withFrozen(ws.record, take)
      : await take(engine.workspaceLayer(paths.sandbox));
    if (!info) throw new PyroError("INTERNAL", `the ${ws.record.engine} engine cannot snapshot a running workspace`);
    await ws.touch();
    return { workspace_id: ws.id, ...snapshotFields(info) };
  }

  async snapshotList({ workspace }: z.output<typeof WorkspaceRefParams>): Promise<SnapshotListResult> {
    const ws = await this.core.open(workspace);
    const list = await this.snapshotStore(ws).list();
    return {
      workspace_id: ws.id,
      count: list.count,
      snapshots: list.snapshots.map((s) => ({ workspace_id: ws.id, ...snapshotFields(s) })),
    };
  }

  async snapshotDelete(params: z.output<typeof SnapshotParams>): Promise<SnapshotDeleteResult> {
    const ws = await this.core.open(params.workspace);
    await this.snapshotStore(ws).delete(params.snapshot_name);
    return { workspace_id: ws.id, snapshot_name: params.snapshot_name, deleted: true };
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
