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
import type { WorkspaceRecord } from "./records.js";

import { guestPath, type WorkspaceService } from "./workspaces.js";

export class DiskService {
  constructor(private readonly core: WorkspaceService) {}

  /** The layer of a stopped workspace, read on the host without starting a sandbox. */
  private async stoppedLayer(record: WorkspaceRecord, what: string): Promise<string> {
    const paths = this.core.records.paths(record.workspace_id);
    if (await liveSupervisor(paths.sandbox)) {
      throw new PyroError(
        "WORKSPACE_RUNNING",
        `${what} reads a stopped workspace's disk; stop ${record.name ?? record.workspace_id} first (pyro workspace stop), or use the workspace file tools while it runs`,
      );
    }
    return getEngine(record.engine).workspaceLayer(paths.sandbox);
  }

  async diskList(params: z.output<typeof FileListParams>): Promise<FileListResult> {
    const record = await this.core.records.resolve(params.workspace);
    return this.core.secrets.redactingAll(record, async () => {
      const layer = await this.stoppedLayer(record, "disk list");
      return {
        workspace_id: record.workspace_id,
        ...(await listLayer(layer, guestPath(params.path), params.recursive)),
      };
    });
  }

  async diskRead(params: z.output<typeof FileReadParams>): Promise<FileReadResult> {
    const record = await this.core.records.resolve(params.workspace);
    const layer = await this.stoppedLayer(record, "disk read");
    const result = await readLayer(layer, guestPath(params.path), params.max_bytes);
    return {
      workspace_id: record.workspace_id,
      ...result,
      content: (await this.core.secrets.redactor(record)).redact(result.content),
    };
  }

  async diskExport(params: z.output<typeof DiskExportParams>): Promise<DiskExportResult> {
    const record = await this.core.records.resolve(params.workspace);
    const layer = await this.stoppedLayer(record, "disk export");
    const result = await exportLayerImage(layer, resolve(params.output_path));
    return { workspace_id: record.workspace_id, ...result };
  }
}
