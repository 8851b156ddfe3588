// Owns `workspace patch apply` on the host: reading a unified diff (plain or git-style), checking
// every hunk of every file against the workspace's current files, and producing a complete plan of
// new file contents. Nothing is written here; the caller writes only after a plan comes back, so a
// patch applies entirely or not at all. File reads are injected, so this is testable without
// sandboxes.

import { applyPatch, parsePatch, type StructuredPatch, type StructuredPatchHunk } from "diff";
import pMap from "p-map";
import { z } from "zod";
import { PyroError } from "../contract/errors.js";

export const PatchApplyParams = z.object({
  patch: z
    .string()
    .describe(
      "A unified diff with paths relative to /workspace (`--- a/src/app.py`, `+++ b/src/app.py`; " +
        "`/dev/null` to add or delete a file), e.g. the output of `git diff` or `workspace diff`.",
    ),
});
export type PatchApplyParams = z.infer<typeof PatchApplyParams>;

export const PatchFileStatus = z.enum(["added", "modified", "deleted"]);
export type PatchFileStatus = z.infer<typeof PatchFileStatus>;

export const PatchApplyResult = z.object({
  changed: z.boolean().describe("False when the patch left every file as it was."),
  files: z.array(z.object({ path: z.string(), status: PatchFileStatus })),
});
export type PatchApplyResult = z.infer<typeof PatchApplyResult>;

export const PlannedFile = z.object({
  path: z.string().describe("Relative to /workspace, normalized, never absolute, never containing `..`."),
  status: PatchFileStatus,
  content: z.string().optional().describe("The whole new content; set for added and modified files."),
  mode: z.number().int().optional().describe("Permission bits to leave the file with; added and modified files."),
});
export type PlannedFile = z.infer<typeof PlannedFile>;

export const PatchPlan = z.object({
  files: z
    .array(PlannedFile)
    .describe("Deletions first, then additions and modifications, each in path order: write them in this order."),
});
export type PatchPlan = z.infer<typeof PatchPlan>;

export interface PatchIo {
  /** The current file, or null when nothing exists at that path. */
  read(path: string): Promise<{ content: string; mode: number } | null>;
}

export const MAX_PATCH_BYTES = 5 * 1024 * 1024;
const READ_CONCURRENCY = 8;
const ADVICE_REGENERATE = "read the file again and regenerate the patch";
const ADVICE_FORMAT = "pass a unified diff (`--- a/PATH`, `+++ b/PATH`, then `@@ -L,N +L,N @@` hunks)";

/** One file's worth of a patch, after parsing and path checks, before looking at any file. */
type FilePatch =
  | { kind: "add"; path: string; hunks: StructuredPatchHunk[]; mode?: number }
  | { kind: "delete"; path: string; hunks: StructuredPatchHunk[] }
  /**
   * candidates: the path to modify is the first that exists (a plain diff may name two).
   * createIfMissing: a plain diff's pure-addition hunk may create the file, as `diff -N` writes new files.
   */
  | { kind: "modify"; candidates: string[]; hunks: StructuredPatchHunk[]; mode?: number; createIfMissing?: boolean }
  | { kind: "rename" | "copy"; from: string; path: string; hunks: StructuredPatchHunk[]; mode?: number };

interface FileState {
  content: string;
  mode: number;
}

/**
 * Checks a patch against the current files and returns what every touched file should become.
 * Throws PyroError without planning anything when any part fails:
 * - INVALID_ARGUMENT: empty, garbage or malformed patch; over 5 MiB; binary or symlink changes
 *   (patch apply writes regular text files only).
 * - PATH_OUTSIDE_WORKSPACE: an absolute path or a `..` segment.
 * - PATCH_DOES_NOT_APPLY: a hunk that does not match, a missing file, an add over an existing file,
 *   a delete that would leave lines behind. Every file is checked, and every failure is named.
 */
export async function planPatch(patchText: string, io: PatchIo): Promise<PatchPlan> {
  const bytes = Buffer.byteLength(patchText);
  if (bytes > MAX_PATCH_BYTES) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `the patch is ${bytes} bytes; patch apply takes at most ${MAX_PATCH_BYTES} bytes (5 MiB): split it into ` +
        "smaller patches, or copy whole files in with workspace sync push",
    );
  }
  const filePatches = parseFilePatches(patchText);
  if (filePatches.length === 0) {
    throw new PyroError("INVALID_ARGUMENT", `no file changes found in the patch; ${ADVICE_FORMAT}`);
  }

  // Every file the patch names is read up front (bounded), then the patch runs against memory.
  const paths = [...new Set(filePatches.flatMap(namedPaths))];
  const original = new Map<string, FileState | null>();
  await pMap(
    paths,
    async (path) => {
      original.set(path, await io.read(path));
    },
    { concurrency: READ_CONCURRENCY },
  );
  const current = new Map(original);
  const failed = new Set<string>();
  const problems: Array<{ what: string; advice: string }> = [];
  const fail = (path: string, what: string, advice = ADVICE_REGENERATE) => {
    failed.add(path);
    problems.push({ what, advice });
  };

  for (const fp of filePatches) {
    if (fp.kind === "add") {
      if (failed.has(fp.path)) continue;
      if (current.get(fp.path)) {
        fail(
          fp.path,
          `patch adds ${fp.path}, which already exists`,
          `patch its current content instead (\`--- a/${fp.path}\`), or delete it first`,
        );
        continue;
      }
      const result = applyHunks("", fp.hunks);
      if (typeof result !== "string") fail(fp.path, hunkProblem(fp.path, fp.hunks, result.failedHunk));
      else current.set(fp.path, { content: result, mode: fp.mode ?? 0o644 });
    } else if (fp.kind === "delete") {
      if (failed.has(fp.path)) continue;
      const cur = current.get(fp.path);
      if (!cur) {
        fail(fp.path, `patch deletes ${fp.path}, which does not exist`, "check the path (relative to /workspace)");
        continue;
      }
      const result = applyHunks(cur.content, fp.hunks);
      if (typeof result !== "string") fail(fp.path, hunkProblem(fp.path, fp.hunks, result.failedHunk));
      else if (result !== "")
        fail(fp.path, `patch deletes ${fp.path} but the file has lines the patch does not remove`);
      else current.set(fp.path, null);
    } else if (fp.kind === "modify") {
      const path = fp.candidates.find((p) => current.get(p)) ?? fp.candidates[0]!;
      if (failed.has(path)) continue;
      const cur = current.get(path);
      if (!cur) {
        // `diff -N` writes a new file as a diff against an empty one under its own name.
        if (fp.createIfMissing && isPureCreation(fp.hunks)) {
          const created = applyHunks("", fp.hunks);
          if (typeof created === "string") {
            current.set(path, { content: created, mode: fp.mode ?? 0o644 });
            continue;
          }
        }
        fail(
          path,
          `patch modifies ${path}, which does not exist`,
          "check the path (relative to /workspace, e.g. `--- a/src/app.py`), or add it as a new file with `--- /dev/null`",
        );
        continue;
      }
      const result = applyHunks(cur.content, fp.hunks);
      if (typeof result !== "string") fail(path, hunkProblem(path, fp.hunks, result.failedHunk));
      else current.set(path, { content: result, mode: fp.mode ?? cur.mode });
    } else {
      if (failed.has(fp.from) || failed.has(fp.path)) continue;
      const src = current.get(fp.from);
      const verb = fp.kind === "rename" ? "renames" : "copies";
      if (!src) {
        fail(fp.from, `patch ${verb} ${fp.from}, which does not exist`, "check the path (relative to /workspace)");
        continue;
      }
      if (current.get(fp.path)) {
        fail(fp.path, `patch ${verb} ${fp.from} to ${fp.path}, which already exists`, "delete it first");
        continue;
      }
      const result = applyHunks(src.content, fp.hunks);
      if (typeof result !== "string") {
        fail(fp.from, hunkProblem(fp.from, fp.hunks, result.failedHunk));
        continue;
      }
      current.set(fp.path, { content: result, mode: fp.mode ?? src.mode });
      if (fp.kind === "rename") current.set(fp.from, null);
    }
  }

  if (problems.length > 0) {
    const advice = [...new Set(problems.map((p) => p.advice))].join("; ");
    const message =
      problems.length === 1
        ? `${problems[0]!.what}; ${advice}`
        : `${problems.map((p) => p.what).join("; ")}; nothing was changed; ${advice}`;
    throw new PyroError("PATCH_DOES_NOT_APPLY", message, { problems: problems.map((p) => p.what) });
  }

  const deleted: PlannedFile[] = [];
  const written: PlannedFile[] = [];
  for (const [path, before] of original) {
    const after = current.get(path) ?? null;
    if (before && !after) deleted.push({ path, status: "deleted" });
    else if (!before && after) written.push({ path, status: "added", content: after.content, mode: after.mode });
    else if (before && after && (before.content !== after.content || before.mode !== after.mode)) {
      written.push({ path, status: "modified", content: after.content, mode: after.mode });
    }
  }
  const byPath = (a: PlannedFile, b: PlannedFile) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  return { files: [...deleted.sort(byPath), ...written.sort(byPath)] };
}

function namedPaths(fp: FilePatch): string[] {
  if (fp.kind === "modify") return fp.candidates;
  if (fp.kind === "rename" || fp.kind === "copy") return [fp.from, fp.path];
  return [fp.path];
}

/** The patched text, or which hunk (0-based) is the first that does not match. */
function applyHunks(content: string, hunks: StructuredPatchHunk[]): string | { failedHunk: number } {
  if (hunks.length === 0) return content;
  // fuzzFactor 0: context and removed lines must match exactly (a hunk may still sit at another
  // offset, as with git apply). jsdiff keeps a CRLF file CRLF when the patch was written with LF.
  const apply = (upTo: number) => applyPatch(content, asPatch(hunks.slice(0, upTo)), { fuzzFactor: 0 });
  const whole = apply(hunks.length);
  if (whole !== false) return whole;
  // Hunks apply in order, so the first prefix that fails ends with the culprit.
  for (let k = 1; k < hunks.length; k++) if (apply(k) === false) return { failedHunk: k - 1 };
  return { failedHunk: hunks.length - 1 };
}

function asPatch(hunks: StructuredPatchHunk[]): StructuredPatch {
  return { oldFileName: "a", newFileName: "b", oldHeader: undefined, newHeader: undefined, hunks };
}

function isPureCreation(hunks: StructuredPatchHunk[]): boolean {
  return hunks.length === 1 && hunks[0]!.oldLines === 0 && hunks[0]!.oldStart <= 1;
}

function hunkProblem(path: string, hunks: StructuredPatchHunk[], index: number): string {
  const h = hunks[index]!;
  // parsePatch moved empty ranges one line on; put them back as the patch wrote them.
  const oldStart = h.oldLines === 0 ? h.oldStart - 1 : h.oldStart;
  const newStart = h.newLines === 0 ? h.newStart - 1 : h.newStart;
  const header = `@@ -${oldStart},${h.oldLines} +${newStart},${h.newLines} @@`;
  return `patch does not apply: ${path} hunk ${index + 1} (${header}) does not match the file`;
}

// ---------------------------------------------------------------------------------------------
// Parsing. jsdiff's parsePatch reads the ---/+++ headers and hunks; git's extended header lines
// (new file mode, rename from, …) are read here because parsePatch skips them, and a git section
// with no hunks (an empty new file, a mode change) would otherwise merge into the next file.

function parseFilePatches(text: string): FilePatch[] {
  // `git format-patch` ends with a "-- " line and the git version; that is not part of any hunk.
  const lines = text.replace(/\n-- \r?\n\d[^\n]*\n*$/, "\n").split("\n");
  const starts: number[] = [];
  lines.forEach((line, i) => {
    if (line.startsWith("diff --git ")) starts.push(i);
  });
  if (starts.length === 0) return parsePlain(lines);
  // Text before the first `diff --git` (a commit message, a diffstat) is not a change.
  return starts.flatMap((start, n) => parseGitSection(lines.slice(start, starts[n + 1] ?? lines.length), start));
}

function parsePlain(lines: string[]): FilePatch[] {
  // `diff -r` reports binary files as one line that parsePatch would skip without a word.
  const binary = lines.find((l) => /^Binary files .* differ\r?$/.test(l));
  if (binary) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `the patch has a binary change (${binary.trim()}); patch apply changes text files only: copy binary ` +
        "files in with workspace sync push, or leave them out of the patch",
    );
  }
  const out: FilePatch[] = [];
  for (const index of parseHunks(lines, 0, "the patch")) {
    if (!index.oldFileName && !index.newFileName) {
      if (index.hunks.length > 0) {
        throw new PyroError(
          "INVALID_ARGUMENT",
          `the patch has a hunk without \`---\`/\`+++\` file names; ${ADVICE_FORMAT}`,
        );
      }
      continue; // text around the diff, like `diff -u` command lines or commentary
    }
    const oldName = devNull(index.oldFileName);
    const newName = devNull(index.newFileName);
    const prefixed = (oldName === null || oldName.startsWith("a/")) && (newName === null || newName.startsWith("b/"));
    const oldPath = oldName === null ? null : checkPath(prefixed ? oldName.slice(2) : oldName);
    const newPath = newName === null ? null : checkPath(prefixed ? newName.slice(2) : newName);
    if (oldPath === null && newPath === null) continue;
    if (oldPath === null) out.push({ kind: "add", path: newPath!, hunks: index.hunks });
    else if (newPath === null) out.push({ kind: "delete", path: oldPath, hunks: index.hunks });
    else if (index.hunks.length > 0) {
      out.push({
        kind: "modify",
        candidates: oldPath === newPath ? [newPath] : [newPath, oldPath],
        hunks: index.hunks,
        createIfMissing: true,
      });
    }
  }
  return out;
}

function parseGitSection(section: string[], firstLine: number): FilePatch[] {
  const header = section[0]!.replace(/\r$/, "");
  const ext: Record<string, string> = {};
  let binary = false;
  let i = 1;
  for (; i < section.length; i++) {
    const line = section[i]!.replace(/\r$/, "");
    if (/^(---|\+\+\+|@@)\s/.test(line)) break;
    if (line.startsWith("GIT binary patch") || line.startsWith("Binary files ")) binary = true;
    const m =
      /^(new file mode|deleted file mode|old mode|new mode|rename from|rename to|copy from|copy to|index) (.*)$/.exec(
        line,
      );
    if (m) ext[m[1]!] = m[2]!;
  }

  let oldName: string | undefined;
  let newName: string | undefined;
  for (const raw of section.slice(i)) {
    if (raw.startsWith("@@")) break;
    if (raw.startsWith("--- ") && oldName === undefined) oldName = headerName(raw.slice(4));
    else if (raw.startsWith("+++ ") && newName === undefined) newName = headerName(raw.slice(4));
  }
  const [gitOld, gitNew] = diffGitNames(header.slice("diff --git ".length));
  const label =
    [newName && stripPrefix(newName, "b/"), oldName && stripPrefix(oldName, "a/"), gitNew && stripPrefix(gitNew, "b/")]
      .filter((n): n is string => !!n && n !== "/dev/null")
      .at(0) ?? header;

  if (binary) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `the patch changes binary file ${label}; patch apply changes text files only: copy binary files in with ` +
        "workspace sync push, or leave them out of the patch",
    );
  }
  const modes = [ext["new file mode"], ext["deleted file mode"], ext["old mode"], ext["new mode"], ext.index];
  if (modes.some((m) => m !== undefined && /\b(120000|160000)$/.test(m.trim()))) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `the patch changes symlink or submodule ${label}; patch apply changes regular files only: ` +
        "make links with workspace exec (`ln -s`), or leave them out of the patch",
    );
  }

  const indexes = parseHunks(section.slice(i), firstLine + i, label);
  const hunks = indexes.flatMap((x) => x.hunks);
  if (indexes.filter((x) => x.oldFileName || x.newFileName).length > 1) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `the patch has two file headers for ${label} under one \`diff --git\` line`,
    );
  }

  const mode = (value: string | undefined) => (value === undefined ? undefined : Number.parseInt(value, 8) & 0o7777);
  const oldSide = devNull(oldName ?? gitOld);
  const newSide = devNull(newName ?? gitNew);
  if (ext["new file mode"] !== undefined || (oldName !== undefined && oldSide === null)) {
    return [
      {
        kind: "add",
        path: newSide === null ? checkPath(label) : checkPath(stripPrefix(newSide, "b/")),
        hunks,
        mode: mode(ext["new file mode"]),
      },
    ];
  }
  if (ext["deleted file mode"] !== undefined || (newName !== undefined && newSide === null)) {
    return [
      { kind: "delete", path: oldSide === null ? checkPath(label) : checkPath(stripPrefix(oldSide, "a/")), hunks },
    ];
  }
  for (const kind of ["rename", "copy"] as const) {
    const from = ext[`${kind} from`];
    const to = ext[`${kind} to`];
    if (from !== undefined && to !== undefined) {
      return [
        { kind, from: checkPath(unquote(from)), path: checkPath(unquote(to)), hunks, mode: mode(ext["new mode"]) },
      ];
    }
  }
  if (oldSide === null || newSide === null) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `the patch's \`diff --git\` line is unreadable: ${header}; ${ADVICE_FORMAT}`,
    );
  }
  const newMode = mode(ext["new mode"]);
  if (hunks.length === 0 && newMode === undefined) return []; // e.g. an `index` line alone
  return [{ kind: "modify", candidates: [checkPath(stripPrefix(newSide, "b/"))], hunks, mode: newMode }];
}

/** jsdiff's parsePatch, with its errors turned into ones that name the file and the patch line. */
function parseHunks(lines: string[], lineOffset: number, label: string): StructuredPatch[] {
  try {
    return parsePatch(lines.join("\n"));
  } catch (err) {
    let msg = (err instanceof Error ? err.message : String(err)).replace(
      /line (\d+)/g,
      (_m, n: string) => `line ${Number(n) + lineOffset}`,
    );
    // jsdiff's wording for the commonest hand-written-patch mistakes, said as what to fix.
    if (/^Hunk at line \d+ contained invalid line $/.test(msg) || /line count did not match/.test(msg)) {
      msg = `${msg.replace(/ contained invalid line $/, " ends early")}: the @@ -L,N +L,N @@ counts must match the hunk's lines`;
    } else if (/^Unknown line/.test(msg)) {
      msg += " (a hunk with more lines than its @@ counts, or text after the diff)";
    } else if (/contained invalid line/.test(msg)) {
      msg += " (every hunk line starts with a space, `+`, `-` or `\\`)";
    }
    const where = label === "the patch" ? "" : ` in the changes to ${label}`;
    throw new PyroError("INVALID_ARGUMENT", `the patch is malformed${where}: ${msg}; ${ADVICE_FORMAT}`);
  }
}

/** The two names on a `diff --git` line, prefixes kept; undefined when they cannot be told apart. */
function diffGitNames(rest: string): [string | undefined, string | undefined] {
  if (rest.startsWith('"')) {
    const end = closingQuote(rest);
    const first = unquote(rest.slice(0, end + 1));
    const second = rest.slice(end + 1).trimStart();
    return [first, unquote(second)];
  }
  // "a/NAME b/NAME" with the same NAME twice: the only split that is unambiguous with spaces.
  const n = (rest.length - 5) / 2;
  if (Number.isInteger(n) && n > 0 && rest.slice(2, 2 + n) === rest.slice(5 + n) && rest[2 + n] === " ") {
    return [rest.slice(0, 2 + n), rest.slice(3 + n)];
  }
  const split = rest.indexOf(" b/");
  return split === -1 ? [undefined, undefined] : [rest.slice(0, split), unquote(rest.slice(split + 1))];
}

/** A ---/+++ name: quoted C-style, or plain up to a tab (what follows a tab is a timestamp). */
function headerName(raw: string): string {
  const text = raw.replace(/\r$/, "");
  if (text.startsWith('"')) return unquote(text.slice(0, closingQuote(text) + 1));
  return text.split("\t")[0]!.trimEnd();
}

function closingQuote(text: string): number {
  for (let i = 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === '"') return i;
  }
  return text.length - 1;
}

/** Undoes git's C-style quoting ("a/caf\303\251" → a/café); plain names pass through. */
function unquote(name: string): string {
  const text = name.trim();
  if (!(text.length >= 2 && text.startsWith('"') && text.endsWith('"'))) return text;
  const named: Record<string, number> = { a: 7, b: 8, t: 9, n: 10, v: 11, f: 12, r: 13, '"': 34, "\\": 92 };
  const bytes: number[] = [];
  const body = text.slice(1, -1);
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!;
    if (ch !== "\\") {
      bytes.push(...Buffer.from(ch, "utf8"));
      continue;
    }
    const next = body[i + 1] ?? "";
    const octal = /^[0-7]{3}/.exec(body.slice(i + 1));
    if (octal) {
      bytes.push(Number.parseInt(octal[0], 8));
      i += 3;
    } else {
      bytes.push(named[next] ?? next.charCodeAt(0));
      i += 1;
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

function devNull(name: string | undefined): string | null {
  return name === undefined || name === "/dev/null" ? null : name;
}

function stripPrefix(name: string, prefix: string): string {
  return name.startsWith(prefix) ? name.slice(prefix.length) : name;
}

/**
 * A patch path as a normalized path relative to /workspace. The guest confines every path again;
 * this is the early error that tells the caller what to write instead.
 */
function checkPath(raw: string): string {
  if (raw.includes("\0")) throw new PyroError("INVALID_ARGUMENT", "a path in the patch contains a NUL byte");
  if (raw.startsWith("/")) {
    const example = raw.startsWith("/workspace/") ? `a/${raw.slice("/workspace/".length)}` : "a/src/app.py";
    throw new PyroError(
      "PATH_OUTSIDE_WORKSPACE",
      `the patch names the absolute path ${raw}; patch paths are relative to /workspace, e.g. \`--- ${example}\``,
    );
  }
  const segments = raw.split("/");
  if (segments.includes("..")) {
    throw new PyroError(
      "PATH_OUTSIDE_WORKSPACE",
      `the patch path ${raw} contains ".."; patch paths stay inside /workspace, e.g. \`--- a/src/app.py\``,
    );
  }
  const path = segments.filter((s) => s !== "" && s !== ".").join("/");
  if (path === "") throw new PyroError("INVALID_ARGUMENT", `the patch names an empty path (${JSON.stringify(raw)})`);
  return path;
}
