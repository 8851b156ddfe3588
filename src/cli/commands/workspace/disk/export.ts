// Owns `pyro workspace disk export`: a stopped workspace's files as a raw ext4 image.
import { Command, Option } from "clipanion";
import { DiskExportParams } from "../../../../contract/workspace.js";
import { PyroCommand } from "../../../base.js";
import { parseFlags } from "../../../flags.js";
import type { Output } from "../../../output.js";

export class DiskExportCommand extends PyroCommand {
  static override paths = [["workspace", "disk", "export"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "write a stopped workspace's files as an ext4 image",
    details: `
      Writes the files of \`/workspace\` in the stopped workspace \`WS\` as a raw ext4 image at \`--output\` (which must not exist), without starting a sandbox. Mount it with \`mount -o loop,ro IMAGE DIR\`.
    `,
    examples: [
      ["Export and mount", "$0 workspace disk export repro-fix --output ws.img && mount -o loop,ro ws.img /mnt"],
    ],
  });

  workspace = Option.String({ name: "WS" });
  output = Option.String("--output", { required: true, description: "Host path of the image to write" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(
      DiskExportParams,
      { workspace: this.workspace, output_path: this.output },
      { workspace: "WS", output_path: "--output" },
    );
    const result = await (await this.context.manager()).workspaces.diskExport(params);
    out.result(result, { stdout: `${result.output_path}\n` });
    out.status({ workspace_id: result.workspace_id, size_bytes: result.size_bytes, entries: result.entry_count });
    return undefined;
  }
}
