// Owns the disk tools: a stopped workspace's files read straight from its layer on the host,
// without starting its sandbox.

import { resolve } from "node:path";
import type { z } from "zod";
import { PyroError } from "../contract/errors.js";
import type {
  DiskExportParams,
  DiskExportResult,
  FileListParams,
  FileListResult,
  FileReadParams,
  FileReadResult,
} from "../contract/workspace.js";
import { getEngine } from "../engines/index.js";
import { liveSupervisor } from "../supervisor/launch.js";
import { exportLayerImage, listLayer, readLayer } from "./disk.js";
import { guestPath } from "./guest.js";
import type { OpenWorkspace } from "./open-workspace.js";
import type { WorkspaceService } from "./workspaces.js";

export class DiskService {
  constructor(private readonly core: WorkspaceService) {}

  /** The layer of a stopped workspace, read on the host without starting a sandbox. */
  private async stoppedLayer(ws: OpenWorkspace, what: string): Promise<string> {
    const paths = ws.paths;
    if (await liveSupervisor(paths.sandbox)) {
      throw new PyroError(
        "WORKSPACE_RUNNING",
        `${what} reads a stopped workspace's disk; stop ${ws.record.name ?? ws.id} first (pyro workspace stop), or use the workspace file tools while it runs`,
      );
    }
    return getEngine(ws.record.engine).workspaceLayer(paths.sandbox);
  }

  async diskList(params: z.output<typeof FileListParams>): Promise<FileListResult> {
    const ws = await this.core.open(params.workspace);
    return ws.redactingAll(async () => {
      const layer = await this.stoppedLayer(ws, "disk list");
      return {
        workspace_id: ws.id,
        ...(await listLayer(layer, guestPath(params.path), params.recursive)),
      };
    });
  }

  async diskRead(params: z.output<typeof FileReadParams>): Promise<FileReadResult> {
    const ws = await this.core.open(params.workspace);
    const layer = await this.stoppedLayer(ws, "disk read");
    const result = await readLayer(layer, guestPath(params.path), params.max_bytes);
    return {
      workspace_id: ws.id,
      ...result,
      content: (await ws.redactor()).redact(result.content),
    };
  }

  async diskExport(params: z.output<typeof DiskExportParams>): Promise<DiskExportResult> {
    const ws = await this.core.open(params.workspace);
    const layer = await this.stoppedLayer(ws, "disk export");
    const result = await exportLayerImage(layer, resolve(params.output_path));
    return { workspace_id: ws.id, ...result };
  }
}
