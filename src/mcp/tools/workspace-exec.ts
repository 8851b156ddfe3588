// Owns the `workspace_exec` tool: one command in a running workspace.
import { WorkspaceExecParams, WorkspaceExecResult } from "../../contract/workspace.js";
import { defineTool } from "../tool.js";

export const workspaceExec = defineTool({
  name: "workspace_exec",
  title: "Run a command in a workspace",
  description: [
    "Run one command in a workspace and return its output; files it writes and packages it installs stay",
    "for later calls. `command` is a shell string (run by /bin/sh -lc, so pipes, && and redirections work)",
    "or an argv array (no shell). It runs in /workspace unless `cwd` says otherwise, with a",
    "`timeout_seconds` limit (default 30). To create or edit files prefer workspace_file_write or",
    "workspace_patch_apply over shell heredocs and sed; to read them prefer workspace_file_read.",
    "`workspace` takes the id or the name. Returns stdout, stderr, exit_code, duration_ms, timed_out,",
    "stdout_truncated, stderr_truncated, execution_mode, workspace_id, sequence and cwd. A non-zero",
    "exit_code is a normal result describing the command, not a failure of the tool; exit_code 124 with",
    "timed_out true means timeout_seconds was hit.",
  ].join(" "),
  inputSchema: WorkspaceExecParams.omit({ secret_env: true }),
  outputSchema: WorkspaceExecResult,
  // An arbitrary command can delete or overwrite what the workspace holds; it runs again on every call.
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  call: (args, { manager, signal }) => manager.workspaces.exec(args, { signal }),
});

/** workspace-full's exec: also `secret_env`. */
export const workspaceExecFull = defineTool({
  ...workspaceExec,
  description: `${workspaceExec.description} \`secret_env\` ({SECRET_NAME: 'ENV_VAR'}) exposes workspace secrets to the command as environment variables; their values are redacted from the output.`,
  inputSchema: WorkspaceExecParams,
});
