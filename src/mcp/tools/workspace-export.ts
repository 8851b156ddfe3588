// Owns the `workspace_export` tool: copying a file or directory out of a workspace to the host.
import { ExportParams, ExportResult } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceExport = defineTool({
  name: "workspace_export",
  title: "Copy files out of a workspace",
  description: [
    "Copy a file or directory from a workspace (`path`, inside /workspace; relative paths start there) to",
    "`output_path` on the host running pyro, which must not exist yet: nothing on the host is overwritten.",
    "Use it to hand build artifacts, reports or a fixed tree back to the user; use workspace_diff to get",
    "the changes as a patch instead. Symlinks that would point outside the copy are left out.",
    "`workspace` takes the id or the name. Returns workspace_id, workspace_path, output_path,",
    "artifact_type, entry_count and bytes_written.",
  ].join(" "),
  inputSchema: ExportParams,
  outputSchema: ExportResult,
  // Writes a new host path only; a second identical call is refused because the output exists.
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  call: async (args, { manager, hostPaths }) =>
    manager.workspaces.export({ ...args, output_path: await hostPaths.target(args.output_path, "output_path") }),
});
