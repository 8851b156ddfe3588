// Owns `pyro explain [CODE]`: what an error code means and what to do about it, or every code.
import { Command, Option, UsageError } from "clipanion";
import { ERROR_CODES, ERROR_FIXES, type ErrorCode, isErrorCode } from "../../contract/errors.js";
import { PyroCommand } from "../base.js";
import type { Output } from "../output.js";

export class ExplainCommand extends PyroCommand {
  static override paths = [["explain"]];

  static override usage = Command.Usage({
    category: "General",
    description: "say what an error code means and what to do about it",
    details: `
      Every error pyro reports has a stable code, shown in text mode as \`error[CODE]: …\` and with \`--json\` as \`error.code\`. Without \`CODE\`, lists every code. docs/errors.md has the same list.
    `,
    examples: [
      ["Explain one code", "$0 explain WORKSPACE_NOT_RUNNING"],
      ["List every code", "$0 explain"],
    ],
  });

  code = Option.String({ required: false, name: "CODE" });

  protected async perform(out: Output): Promise<undefined> {
    if (this.code === undefined) {
      const codes = Object.keys(ERROR_CODES) as ErrorCode[];
      out.result(
        { codes: codes.map(describe) },
        { stdout: codes.map((code) => `${code}\n  ${ERROR_CODES[code]}\n  fix: ${ERROR_FIXES[code]}\n`).join("\n") },
      );
      return undefined;
    }
    const code = this.code
      .trim()
      .toUpperCase()
      .replace(/^ERROR\[|\]:?$/g, "");
    if (!isErrorCode(code)) {
      throw new UsageError(`${this.code} is not an error code of pyro; \`pyro explain\` lists them all`);
    }
    const entry = describe(code);
    out.result(entry, { stdout: `${code}: ${entry.meaning}\nfix: ${entry.fix}\n` });
    return undefined;
  }
}

function describe(code: ErrorCode): { code: ErrorCode; meaning: string; fix: string } {
  return { code, meaning: ERROR_CODES[code], fix: ERROR_FIXES[code] };
}
