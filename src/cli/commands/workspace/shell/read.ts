// Owns `pyro workspace shell read`: a shell's output from a cursor, raw or as the screen shows it.
import { Command, Option } from "clipanion";
import * as t from "typanion";
import { DEFAULTS } from "../../../../contract/defaults.js";
import { ShellReadParams } from "../../../../contract/interactive.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags } from "../../../flags.js";
import type { Output } from "../../../output.js";
import { SHELL_POSITIONALS } from "./render.js";

export class ShellReadCommand extends PyroCommand {
  static override paths = [["workspace", "shell", "read"]];

  static override usage = Command.Usage({
    category: "Shells",
    description: "print a shell's output",
    details: `
      Prints what the shell printed from \`--cursor\` (default 0: everything kept) on stdout, at most \`--max-chars\` (default ${DEFAULTS.readMaxBytes}), and the cursor to read from next on stderr (\`next_cursor=\`). \`--plain\` prints the text as a person would see it on the terminal: colours and cursor movement applied, no escape sequences, and a full-screen program (vi, less) as its screen. \`--wait-for-idle-ms N\` first waits until the shell has printed nothing for N ms (at most \`--max-wait-ms\`, default 10000), so a command's output arrives whole.
    `,
    examples: [
      ["Read what a command printed", "$0 workspace shell read repro-fix $SH --plain --wait-for-idle-ms 500"],
      ["Only what is new since the last read", "$0 workspace shell read repro-fix $SH --cursor 1834"],
    ],
  });

  workspace = Option.String({ name: "WS" });
  shell = Option.String({ name: "SHELL" });
  cursor = Option.String("--cursor", {
    validator: t.isNumber(),
    description: "Read from here (a previous next_cursor)",
  });
  maxChars = Option.String("--max-chars", {
    validator: t.isNumber(),
    description: `Read at most this much (default ${DEFAULTS.readMaxBytes})`,
  });
  plain = Option.Boolean("--plain", false, { description: "Render as the terminal shows it" });
  waitForIdleMs = Option.String("--wait-for-idle-ms", {
    validator: t.isNumber(),
    description: "Wait until the shell has been quiet this long",
  });
  maxWaitMs = Option.String("--max-wait-ms", {
    validator: t.isNumber(),
    description: "Wait at most this long (default 10000)",
  });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(
      ShellReadParams,
      {
        workspace: this.workspace,
        shell_id: this.shell,
        cursor: this.cursor,
        max_chars: this.maxChars,
        plain: this.plain,
        wait_for_idle_ms: this.waitForIdleMs,
        max_wait_ms: this.maxWaitMs,
      },
      SHELL_POSITIONALS,
    );
    const result = await (await this.context.manager()).shells.read(params);
    const text = result.output;
    out.result(result, { stdout: text === "" || text.endsWith("\n") ? text : `${text}\n` });
    out.status({
      shell_id: result.shell_id,
      state: result.state,
      exit_code: result.exit_code ?? undefined,
      cursor: result.cursor,
      next_cursor: result.next_cursor,
      truncated: result.truncated || undefined,
    });
    return undefined;
  }
}
