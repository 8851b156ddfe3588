// workspace_exec as an agent uses it over MCP.
import { WorkspaceExecResult } from "../../src/contract/workspace.js";

/** Calls one MCP tool and parses its structured result (each test file has its own client). */
export type CallTool = <T>(
  schema: { parse(value: unknown): T },
  name: string,
  args: Record<string, unknown>,
) => Promise<T>;

/**
 * Runs `workspace_exec` and, while the command is still running after its wait, collects the rest
 * with `workspace_exec_wait` (with the same `wait_seconds`), joining the output of every reply.
 */
export async function execToEnd(
  call: CallTool,
  args: { workspace: string; command: string | string[]; wait_seconds?: number } & Record<string, unknown>,
): Promise<WorkspaceExecResult> {
  let result = await call(WorkspaceExecResult, "workspace_exec", args);
  let { stdout, stderr } = result;
  while (result.running) {
    result = await call(WorkspaceExecResult, "workspace_exec_wait", {
      workspace: args.workspace,
      sequence: result.sequence,
      ...(args.wait_seconds === undefined ? {} : { wait_seconds: args.wait_seconds }),
    });
    stdout += result.stdout;
    stderr += result.stderr;
  }
  return { ...result, stdout, stderr };
}
