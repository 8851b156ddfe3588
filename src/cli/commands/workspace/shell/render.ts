// Owns the status line of the `pyro workspace shell` commands.
import type { ShellInfo } from "../../../../contract/interactive.js";
import type { StatusValue } from "../../../output.js";

/** Payload fields → the positionals the usage lines show, for parseFlags. */
export const SHELL_POSITIONALS = { workspace: "WS", shell_id: "SHELL" } as const;

export function shellStatus(info: ShellInfo): Record<string, StatusValue> {
  return {
    workspace_id: info.workspace_id,
    shell_id: info.shell_id,
    state: info.state,
    exit_code: info.exit_code ?? undefined,
    cwd: info.cwd,
    size: `${info.cols}x${info.rows}`,
  };
}
