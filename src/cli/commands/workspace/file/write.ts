// Owns `pyro workspace file write`: replacing one text file in a workspace.
import { Command, Option } from "clipanion";
import { FileWriteParams } from "../../../../contract/workspace.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags, textFrom } from "../../../flags.js";
import type { Output } from "../../../output.js";
import { POSITIONALS } from "../render.js";

export class WorkspaceFileWriteCommand extends PyroCommand {
  static override paths = [["workspace", "file", "write"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "write a text file in a workspace",
    details: `
      Replaces the whole content of \`PATH\` (relative paths start in \`/workspace\`) in \`WS\` with \`--text\`, or with the content of the host file \`--text-file\` (\`-\` reads stdin), creating the file and its parent directories as needed. The content must be UTF-8 text; copy binary files in with \`pyro workspace sync push\`.
    `,
    examples: [
      ["Write a small file", "$0 workspace file write repro-fix notes.md --text 'retry after 3 s'"],
      ["Copy a host file in", "$0 workspace file write repro-fix src/config.json --text-file ./config.json"],
      ["Write what a pipe produces", "generate-config | $0 workspace file write repro-fix config.yaml --text-file -"],
    ],
  });

  workspace = Option.String({ name: "WS" });
  guestPath = Option.String({ name: "PATH" });
  text = Option.String("--text", { description: "The new content" });
  textFile = Option.String("--text-file", { description: "Host file holding the new content (- for stdin)" });

  protected async perform(out: Output): Promise<undefined> {
    const text = await textFrom(
      { text: ["--text", this.text], file: ["--text-file", this.textFile] },
      this.context.stdin,
    );
    const params = parseFlags(FileWriteParams, { workspace: this.workspace, path: this.guestPath, text }, POSITIONALS);
    const result = await (await this.context.manager()).workspaces.writeFile(params);
    out.result(result, { stdout: `wrote ${result.bytes_written} bytes to ${result.path}\n` });
    out.status({ workspace_id: result.workspace_id, path: result.path, bytes_written: result.bytes_written });
    return undefined;
  }
}
