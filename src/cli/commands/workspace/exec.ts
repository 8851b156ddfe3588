// Owns `pyro workspace exec`: one command in a running workspace, exiting with its exit code.
import { Command, Option, UsageError } from "clipanion";
import * as t from "typanion";
import { DEFAULTS, LIMITS } from "../../../contract/defaults.js";
import { WorkspaceExecParams } from "../../../contract/workspace.js";
import { PyroCommand } from "../../base.js";
import { commandFromWords } from "../../command-words.js";
import { parseFlags, secretEnvFlags } from "../../flags.js";
import { guestStreams, type Output } from "../../output.js";
import { POSITIONALS } from "./render.js";

export class WorkspaceExecCommand extends PyroCommand {
  static override paths = [["workspace", "exec"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "run a command in a workspace",
    details: `
      Runs \`CMD\` in the workspace \`WS\` (its id or name), in \`/workspace\` unless \`--cwd\` says otherwise, and prints the command's stdout and stderr on pyro's own stdout and stderr. pyro exits with the command's exit code (124 when \`--timeout-seconds\`, default ${DEFAULTS.timeoutSeconds}, killed it). Files and installed packages stay for the next command.

      Several words after \`--\` run as an argv, without a shell. A single word that contains spaces or shell syntax runs through \`/bin/sh -lc\`, as ssh does, so pipes and \`&&\` work when quoted.
    `,
    examples: [
      ["Check a seeded checkout", "$0 workspace exec repro-fix -- git status --short"],
      ["Run a shell pipeline in a subdirectory", "$0 workspace exec repro-fix --cwd src -- 'make && make test'"],
      ["Allow a slow test suite ten minutes", "$0 workspace exec repro-fix --timeout-seconds 600 -- npm test"],
      ["Use a secret as $GITHUB_TOKEN", "$0 workspace exec repro-fix --secret-env GH=GITHUB_TOKEN -- gh auth status"],
    ],
  });

  workspace = Option.String({ name: "WS" });
  timeoutSeconds = Option.String("--timeout-seconds", {
    validator: t.isNumber(),
    description: `Kill the command after this many seconds (${LIMITS.timeoutSeconds.min}-${LIMITS.timeoutSeconds.max}, default ${DEFAULTS.timeoutSeconds})`,
  });
  cwd = Option.String("--cwd", {
    description: `Working directory inside /workspace (default ${DEFAULTS.guestWorkspace})`,
  });
  secretEnv = Option.Array("--secret-env", {
    description: "Expose a workspace secret as an environment variable: NAME or NAME=ENV_VAR (repeatable)",
  });
  words = Option.Rest({ name: "CMD" });

  protected async perform(out: Output): Promise<number> {
    const command = commandFromWords(this.words);
    if (command === undefined) {
      throw new UsageError(
        `pyro workspace exec needs a command after --, e.g. pyro workspace exec ${this.workspace} -- git status`,
      );
    }
    const params = parseFlags(
      WorkspaceExecParams,
      {
        workspace: this.workspace,
        command,
        cwd: this.cwd,
        timeout_seconds: this.timeoutSeconds,
        secret_env: secretEnvFlags(this.secretEnv),
      },
      { ...POSITIONALS, command: "CMD", secret_env: "--secret-env" },
    );
    const { signal } = this.context;
    const manager = await this.context.manager();
    // Ctrl-C cancels the request; the agent kills the command's whole process group.
    const result = await manager.workspaces.exec(params, { signal }).catch((err: unknown) => {
      if (signal.aborted) return undefined;
      throw err;
    });
    if (!result) return out.interrupted(String(signal.reason));
    out.result(result, guestStreams(result));
    out.status({
      workspace_id: result.workspace_id,
      sequence: result.sequence,
      cwd: result.cwd,
      engine: result.execution_mode,
      exit_code: result.exit_code,
      duration_ms: result.duration_ms,
      timed_out: result.timed_out || undefined,
      stdout_truncated: result.stdout_truncated || undefined,
      stderr_truncated: result.stderr_truncated || undefined,
    });
    return result.exit_code;
  }
}
