// Owns `pyro workspace file read`: one text file's content from a workspace.
import { Command, Option } from "clipanion";
import * as t from "typanion";
import type { z } from "zod";
import { DEFAULTS } from "../../../../contract/defaults.js";
import { FileReadParams, type FileReadResult } from "../../../../contract/workspace.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags } from "../../../flags.js";
import type { Output } from "../../../output.js";
import { POSITIONALS, showFileRead } from "../render.js";

/** The flags and output that `workspace file read` and `workspace disk read` share; each reads its own way. */
export abstract class FileReadBase extends PyroCommand {
  workspace = Option.String({ name: "WS" });
  guestPath = Option.String({ name: "PATH" });
  maxBytes = Option.String("--max-bytes", {
    validator: t.isNumber(),
    description: `Read at most this many bytes (default ${DEFAULTS.readMaxBytes})`,
  });
  contentOnly = Option.Boolean("--content-only", false, { description: "Print the content and nothing else" });

  protected abstract read(params: z.output<typeof FileReadParams>): Promise<FileReadResult>;

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(
      FileReadParams,
      { workspace: this.workspace, path: this.guestPath, max_bytes: this.maxBytes },
      POSITIONALS,
    );
    showFileRead(out, await this.read(params), this.contentOnly);
    return undefined;
  }
}

export class WorkspaceFileReadCommand extends FileReadBase {
  static override paths = [["workspace", "file", "read"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "print a file from a workspace",
    details: `
      Prints the content of \`PATH\` (relative paths start in \`/workspace\`) in \`WS\` on stdout, up to \`--max-bytes\` (default ${DEFAULTS.readMaxBytes}), followed by a status line on stderr that says whether it was cut short. \`--content-only\` prints the content and nothing else. Reading never counts as activity.
    `,
    examples: [
      ["Print a file", "$0 workspace file read repro-fix src/main.c"],
      ["Copy a file's content into a host file", "$0 workspace file read repro-fix notes.md --content-only > notes.md"],
    ],
  });

  protected async read(params: z.output<typeof FileReadParams>): Promise<FileReadResult> {
    return (await this.context.manager()).workspaces.readFile(params);
  }
}
