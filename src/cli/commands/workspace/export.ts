// Owns `pyro workspace export`: copying a file or directory out of a workspace to the host.
import { Command, Option } from "clipanion";
import { ExportParams } from "../../../contract/workspace.js";
import { PyroCommand } from "../../base.js";
import { parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import { POSITIONALS } from "./render.js";

export class WorkspaceExportCommand extends PyroCommand {
  static override paths = [["workspace", "export"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "copy a file or directory out of a workspace",
    details: `
      Copies \`PATH\` (a file or directory inside \`/workspace\`; relative paths start there) from \`WS\` to \`--output\` on the host, which must not exist yet. Symlinks that would point outside the copy, device files, FIFOs and sockets are left out, and files are written as yours without any setuid, setgid or sticky bit, so nothing exported runs with raised rights on the host; stderr names each such entry.
    `,
    examples: [
      ["Export one file", "$0 workspace export repro-fix note.txt --output ./note.txt"],
      ["Export the whole workspace", "$0 workspace export repro-fix /workspace --output ./result"],
    ],
  });

  workspace = Option.String({ name: "WS" });
  guestPath = Option.String({ name: "PATH" });
  output = Option.String("--output", { description: "Host path to write; must not exist yet (required)" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(
      ExportParams,
      { workspace: this.workspace, path: this.guestPath, output_path: this.output },
      { ...POSITIONALS, output_path: "--output" },
    );
    const result = await (await this.context.manager()).workspaces.export(params);
    const what = result.artifact_type === "directory" ? `directory (${result.entry_count} entries)` : "file";
    const notes = [
      ...result.skipped.map((entry) => `not exported: ${entry}\n`),
      ...result.modes_cleared.map((path) => `setuid/setgid/sticky bit cleared: ${path}\n`),
    ].join("");
    out.result(result, {
      stdout: `exported ${what} ${result.workspace_path} to ${result.output_path}\n`,
      stderr: notes || undefined,
    });
    out.status({
      workspace_id: result.workspace_id,
      workspace_path: result.workspace_path,
      output_path: result.output_path,
      artifact_type: result.artifact_type,
      entry_count: result.entry_count,
      bytes_written: result.bytes_written,
    });
    return undefined;
  }
}
