// Owns `pyro workspace diff`: what changed in /workspace since create, as a patch.
import { Command, Option } from "clipanion";
import { type DiffOmission, WorkspaceDiffParams } from "../../../contract/workspace.js";
import { PyroCommand } from "../../base.js";
import { parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import { commandText, POSITIONALS } from "./render.js";

/**
 * The exit code when the printed patch lacks changes listed in `files` (patch_omitted): distinct
 * from 1 (the diff failed) so that a script or `set -o pipefail` stops before applying half a fix.
 */
export const INCOMPLETE_PATCH_EXIT = 3;

const WHY: Record<DiffOmission["reason"], string> = {
  size_cap: "patch size cap",
  too_large: "too large for a patch",
};

export class WorkspaceDiffCommand extends PyroCommand {
  static override paths = [["workspace", "diff"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "show what changed in a workspace since create",
    details: `
      Compares \`/workspace\` in \`WS\` with the baseline taken when it was created and prints a unified diff of the text changes on stdout, ready for \`git apply\` or \`patch -p1\`, then a summary line on stderr. Binary files and changed directories are not in the patch; they are listed on stderr. Nothing is printed on stdout when nothing changed.

      Paths that the repository's \`.gitignore\` files (at any depth) or \`.git/info/exclude\` ignore, and everything inside \`.git/\`, are left out, as \`git status\` leaves out build output, \`node_modules\` and caches; the summary line counts them (\`ignored=N\`) and \`--include-ignored\` shows them. \`--path\` and \`--exclude\` take .gitignore-syntax patterns relative to \`/workspace\`: \`src/\` is any directory named src, \`/src\` only the top-level one, \`*.min.js\` any such file.

      The patch holds at most 1 MiB; the smallest changes go in first. When a text change does not fit, it is named on stderr, the patch printed is still valid but incomplete, and pyro exits with ${INCOMPLETE_PATCH_EXIT}: narrow the diff with \`--path\` to get the rest.
    `,
    examples: [
      ["Show the changes", "$0 workspace diff repro-fix"],
      ["Apply them to the host checkout", "set -o pipefail; $0 workspace diff repro-fix | git -C ./repo apply"],
      ["Only the sources, without generated parsers", "$0 workspace diff repro-fix --path src/ --exclude '*_gen.c'"],
      ["Also build output and .git/", "$0 workspace diff repro-fix --include-ignored"],
      ["Just the changed paths", "$0 workspace diff repro-fix --json | jq -r '.files[].path'"],
    ],
  });

  workspace = Option.String({ name: "WS" });
  includeIgnored = Option.Boolean("--include-ignored", {
    description: "Also show paths .gitignore or .git/info/exclude ignore, and .git/ itself",
  });
  pathFilters = Option.Array("--path", {
    description: "Only changes matching this .gitignore-syntax pattern, e.g. src/ or /Makefile (repeatable)",
  });
  exclude = Option.Array("--exclude", {
    description: "Leave out changes matching this .gitignore-syntax pattern, e.g. '*.min.js' (repeatable)",
  });

  protected async perform(out: Output): Promise<number> {
    const params = parseFlags(
      WorkspaceDiffParams,
      {
        workspace: this.workspace,
        include_ignored: this.includeIgnored,
        paths: this.pathFilters,
        exclude: this.exclude,
      },
      { ...POSITIONALS, paths: "--path", exclude: "--exclude" },
    );
    const diff = await (await this.context.manager()).workspaces.diff(params);
    const omitted = diff.patch_omitted ?? [];
    const status = new Map(diff.files.map((f) => [f.path, f.status]));
    const notes = [
      ...diff.files.filter((f) => f.binary).map((f) => `not in the patch (binary): ${f.status} ${f.path}\n`),
      ...omitted.map((o) => `not in the patch (${WHY[o.reason]}): ${status.get(o.path) ?? "changed"} ${o.path}\n`),
    ];
    if (diff.ignored) {
      notes.push(
        `left out: ${diff.ignored} changed ${diff.ignored === 1 ? "path" : "paths"} that .gitignore rules ignore or inside .git/; --include-ignored shows them\n`,
      );
    }
    if (omitted.length > 0) notes.push(`${incompleteLine(this.workspace, omitted)}\n`);
    out.result(diff, { stdout: diff.patch, stderr: notes.join("") });
    const { summary } = diff;
    out.status({
      workspace_id: diff.workspace_id,
      changed: diff.changed,
      total: summary.total,
      added: summary.added,
      modified: summary.modified,
      deleted: summary.deleted,
      type_changed: summary.type_changed,
      binary: summary.binary,
      ignored: diff.ignored,
      patch_omitted: omitted.length || undefined,
    });
    return omitted.length > 0 ? INCOMPLETE_PATCH_EXIT : 0;
  }
}

/** The one line that says the patch is incomplete, which files it lacks and how to get them. */
function incompleteLine(workspace: string, omitted: DiffOmission[]): string {
  const shown = omitted.slice(0, 5).map((o) => o.path);
  const more = omitted.length > shown.length ? ` and ${omitted.length - shown.length} more` : "";
  const capped = omitted.find((o) => o.reason === "size_cap");
  const large = omitted.find((o) => o.reason === "too_large");
  const fixes = [
    capped &&
      `narrow the diff to get them, e.g. ${commandText(["pyro", "workspace", "diff", workspace, "--path", patternFor(capped.path)])} (or --exclude what you do not need)`,
    large &&
      `export what is too large for a patch, e.g. ${commandText(["pyro", "workspace", "export", workspace, large.path, "--output", "./out"])}`,
  ].filter(Boolean);
  return `error: the patch is incomplete (exit ${INCOMPLETE_PATCH_EXIT}): ${omitted.length} changed ${omitted.length === 1 ? "file is" : "files are"} not in it: ${shown.join(", ")}${more}; ${fixes.join("; ")}`;
}

/** A --path pattern that selects exactly one path: anchored, gitignore's special characters escaped. */
function patternFor(path: string): string {
  return `/${path.replace(/[\\*?[\]]/g, "\\$&")}`;
}
