// Owns the `workspace_disk_export` tool: a stopped workspace's files as an ext4 image.
import { DiskExportParams, DiskExportResult } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceDiskExport = defineTool({
  name: "workspace_disk_export",
  title: "Export a stopped workspace's disk",
  description: [
    "Write the files of a STOPPED workspace's /workspace as a raw ext4 image at `output_path` on the host",
    "(must not exist yet), without starting a sandbox; it mounts with `mount -o loop`. For a running",
    "workspace use workspace_export instead. Returns output_path, size_bytes and entry_count.",
    "`workspace` takes the id or the name.",
  ].join(" "),
  inputSchema: DiskExportParams,
  outputSchema: DiskExportResult,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  call: async (args, { manager, hostPaths }) =>
    manager.workspaces.diskExport({ ...args, output_path: await hostPaths.target(args.output_path, "output_path") }),
});
