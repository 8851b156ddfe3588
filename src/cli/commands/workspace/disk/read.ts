// Owns `pyro workspace disk read`: a file of a stopped workspace, read on the host.
import { Command } from "clipanion";
import type { z } from "zod";
import { DEFAULTS } from "../../../../contract/defaults.js";
import type { FileReadParams, FileReadResult } from "../../../../contract/workspace.js";
import { FileReadBase } from "../file/read.js";

export class DiskReadCommand extends FileReadBase {
  static override paths = [["workspace", "disk", "read"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "print a file of a stopped workspace",
    details: `Prints \`PATH\` of the stopped workspace \`WS\` without starting a sandbox on stdout, up to \`--max-bytes\` (default ${DEFAULTS.readMaxBytes}), followed by a status line on stderr that says whether it was cut short. \`--content-only\` prints the content and nothing else.`,
    examples: [
      ["Read a file of a stopped workspace", "$0 workspace disk read repro-fix src/main.c"],
      ["Copy it into a host file", "$0 workspace disk read repro-fix build.log --content-only > build.log"],
    ],
  });

  protected async read(params: z.output<typeof FileReadParams>): Promise<FileReadResult> {
    return (await this.context.manager()).workspaces.diskRead(params);
  }
}
