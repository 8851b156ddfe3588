// Owns the use-case modes of `pyro mcp serve --mode`: for each of the core agent use cases, the
// tools it needs (a subset of workspace-full, narrowed further by the chosen profile), a sentence
// that frames every tool for that use case, and the server instructions a model reads first.
import { McpMode, type ToolName } from "./profiles.js";
import { defineTool, type PyroTool } from "./tool.js";
import { OfflineCreateParams } from "./tools/workspace-create.js";

export { McpMode };

interface ModeSpec {
  tools: readonly ToolName[];
  /** Prepended to every tool's description. */
  framing: string;
  instructions: string;
}

export const MODES: Readonly<Record<McpMode, ModeSpec>> = {
  "repro-fix": {
    tools: [
      "workspace_create",
      "workspace_list",
      "workspace_status",
      "workspace_exec",
      "workspace_exec_wait",
      "workspace_file_list",
      "workspace_file_read",
      "workspace_file_write",
      "workspace_patch_apply",
      "workspace_diff",
      "workspace_export",
      "workspace_reset",
      "workspace_delete",
      "snapshot_create",
      "snapshot_list",
    ],
    framing: "Repro-and-fix loop: reproduce the failure, change the code, re-run, compare with the diff.",
    instructions: [
      "Mode repro-fix: create a workspace seeded with the project (one per issue when working on several,",
      "named after the issue), run the failing command with workspace_exec to reproduce, take a",
      "snapshot_create checkpoint, edit with workspace_patch_apply or workspace_file_write, re-run until it",
      "passes, then read workspace_diff: its patch is the fix. workspace_reset returns to the checkpoint or",
      "the baseline to retry.",
    ].join(" "),
  },
  inspect: {
    tools: [
      "workspace_create",
      "workspace_status",
      "workspace_exec",
      "workspace_exec_wait",
      "workspace_file_list",
      "workspace_file_read",
      "workspace_diff",
      "workspace_delete",
    ],
    framing: "Inspecting untrusted code: the workspace has no network and nothing here writes files for you.",
    instructions: [
      "Mode inspect: look at untrusted code without trusting it. Workspaces created here have no network",
      "(loopback only). Read with workspace_file_list and workspace_file_read; run analysis commands with",
      "workspace_exec (the code cannot reach anything); workspace_diff shows whatever a command changed.",
      "Delete the workspace when done.",
    ].join(" "),
  },
  "cold-start": {
    tools: [
      "workspace_create",
      "workspace_status",
      "workspace_exec",
      "workspace_exec_wait",
      "workspace_file_list",
      "workspace_file_read",
      "workspace_logs",
      "workspace_summary",
      "workspace_delete",
      "service_start",
      "service_status",
      "service_logs",
      "service_stop",
    ],
    framing: "Cold-start validation: does the repository install, build, test and start from a clean machine?",
    instructions: [
      "Mode cold-start: validate that a repository works from scratch. Create a workspace seeded with it",
      "(network_policy allowlist with allow_presets, or egress on workspace-full, when dependencies must be",
      "downloaded), follow its README with workspace_exec",
      "(install, build, test), start its server with service_start and a readiness probe, read failures with",
      "service_logs, and report with workspace_summary (every command and its exit code).",
    ].join(" "),
  },
  "review-eval": {
    tools: [
      "workspace_create",
      "workspace_list",
      "workspace_status",
      "workspace_sync_push",
      "workspace_exec",
      "workspace_exec_wait",
      "workspace_file_read",
      "workspace_patch_apply",
      "workspace_diff",
      "workspace_summary",
      "workspace_reset",
      "workspace_delete",
      "snapshot_create",
    ],
    framing: "Review and evaluation: apply a candidate change to a clean copy and measure it.",
    instructions: [
      "Mode review-eval: evaluate a change or a candidate. Create a workspace from the base version, apply",
      "the candidate with workspace_patch_apply (or workspace_sync_push), run the tests or the evaluation",
      "with workspace_exec, and compare with workspace_diff and workspace_summary. workspace_reset returns",
      "to the base for the next candidate.",
    ].join(" "),
  },
};

/** inspect's create: no network_policy (always off), no rules, host files or secrets — offline. */
const inspectCreate = (base: PyroTool): PyroTool =>
  defineTool({
    ...base,
    inputSchema: OfflineCreateParams,
  }) as PyroTool;

/** The tools of `mode` among `available` (a profile's), each framed for the use case. */
export function applyMode(mode: McpMode, available: PyroTool[]): PyroTool[] {
  const spec = MODES[mode];
  return available
    .filter((tool) => spec.tools.includes(tool.name))
    .map((tool) => {
      const scoped = mode === "inspect" && tool.name === "workspace_create" ? inspectCreate(tool) : tool;
      return { ...scoped, description: `${spec.framing} ${scoped.description}` };
    });
}
