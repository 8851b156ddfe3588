// Owns the `workspace_reset` tool: putting /workspace back to its baseline in a fresh sandbox.
import { ResetParams, ResetResult } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceReset = defineTool({
  name: "workspace_reset",
  title: "Reset a workspace to its baseline",
  description: [
    "Discard every change made in a workspace since it was created: the sandbox restarts (running",
    "processes end) and /workspace holds the baseline taken at create again, so workspace_diff is empty",
    "afterwards. Use it to retry an approach from a clean state without re-seeding. Name, labels and",
    'command history stay. `snapshot` defaults to "baseline"; a name saved with snapshot_create (where',
    "the profile offers it) resets to that state instead. Save changes you want to keep first",
    "(workspace_diff or workspace_export). `workspace` takes the id or the name.",
    "Returns workspace_id, snapshot and reset_count.",
  ].join(" "),
  inputSchema: ResetParams,
  outputSchema: ResetResult,
  // It throws away work; resetting twice leaves the same baseline.
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  call: (args, { manager }) => manager.workspaces.reset(args),
});
