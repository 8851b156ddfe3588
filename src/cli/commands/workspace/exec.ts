// Owns `pyro workspace exec`: one command in a running workspace, its output printed as it arrives,
// exiting with its exit code.
import { Command, Option, UsageError } from "clipanion";
import * as t from "typanion";
import { DEFAULTS, LIMITS } from "../../../contract/defaults.js";
import { WorkspaceExecParams } from "../../../contract/workspace.js";
import { PyroCommand } from "../../base.js";
import { commandFromWords } from "../../command-words.js";
import { parseFlags, secretEnvFlags } from "../../flags.js";
import { type Output, streamedOutput } from "../../output.js";
import { POSITIONALS } from "./render.js";

export class WorkspaceExecCommand extends PyroCommand {
  static override paths = [["workspace", "exec"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "run a command in a workspace",
    details: `
      Runs \`CMD\` in the workspace \`WS\` (its id or name), in \`/workspace\` unless \`--cwd\` says otherwise, and prints the command's stdout and stderr on pyro's own stdout and stderr as the command prints them (with \`--json\`, one object when it ends). pyro exits with the command's exit code. Files and installed packages stay for the next command.

      After \`--timeout-seconds\` (default ${DEFAULTS.execTimeoutSeconds}) the command is killed with every process it started, pyro says so on stderr and exits 124. Ctrl-C does the same and exits 130; either way \`pyro workspace logs\` records the command with its cause.

      Several words after \`--\` run as an argv, without a shell. A single word that contains spaces or shell syntax runs through \`/bin/sh -lc\`, as ssh does, so pipes and \`&&\` work when quoted.
    `,
    examples: [
      ["Check a seeded checkout", "$0 workspace exec repro-fix -- git status --short"],
      ["Run a shell pipeline in a subdirectory", "$0 workspace exec repro-fix --cwd src -- 'make && make test'"],
      ["Allow a slow test suite half an hour", "$0 workspace exec repro-fix --timeout-seconds 1800 -- npm test"],
      ["Use a secret as $GITHUB_TOKEN", "$0 workspace exec repro-fix --secret-env GH=GITHUB_TOKEN -- gh auth status"],
    ],
  });

  workspace = Option.String({ name: "WS" });
  timeoutSeconds = Option.String("--timeout-seconds", {
    validator: t.isNumber(),
    description: `Kill the command after this many seconds (${LIMITS.timeoutSeconds.min}-${LIMITS.timeoutSeconds.max}, default ${DEFAULTS.execTimeoutSeconds})`,
  });
  cwd = Option.String("--cwd", {
    description: `Working directory inside /workspace (default ${DEFAULTS.guestWorkspace})`,
  });
  secretEnv = Option.Array("--secret-env", {
    description: "Expose a workspace secret as an environment variable: NAME or NAME=ENV_VAR (repeatable)",
  });
  words = Option.Rest({ name: "CMD" });

  // An interrupt must wait for the kill and the log entry, not end the process first.
  protected override readonly handlesInterrupt = true;

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
    const { signal, stdout, stderr } = this.context;
    const manager = await this.context.manager();
    // Text mode shows the output as it comes; the rest of the result is printed at the end.
    const { onOutput, rest } = streamedOutput(out.json, stdout, stderr);
    // Ctrl-C cancels the command: the agent kills it with everything it started, and it is logged.
    const result = await manager.workspaces.exec(params, { signal, onOutput });
    if (!out.json) out.result(result, rest(result));
    if (signal.aborted) return out.interrupted(String(signal.reason));
    if (out.json) out.result(result);
    if (result.timed_out) {
      out.problem(
        `the command ran past --timeout-seconds ${params.timeout_seconds} and was killed, with every process it started (exit 124); give it longer with --timeout-seconds N (up to ${LIMITS.timeoutSeconds.max})`,
      );
    }
    out.status({
      workspace_id: result.workspace_id,
      sequence: result.sequence,
      cwd: result.cwd,
      engine: result.execution_mode,
      exit_code: result.exit_code,
      duration_ms: result.duration_ms,
      timed_out: result.timed_out || undefined,
      cancelled: result.cancelled || undefined,
      stdout_truncated: result.stdout_truncated || undefined,
      stderr_truncated: result.stderr_truncated || undefined,
    });
    return result.exit_code ?? 1;
  }
}
