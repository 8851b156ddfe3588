// Owns `workspace diff` on the host: the tree-manifest format (shared with the guest agent), the
// comparison of a baseline manifest with the current one, and the rendering of those changes as the
// contract's diff payload, a git-style unified patch that `git apply` and `patch -p1` accept.
// All I/O is injected (or, for manifestOfDir, a plain host directory) so it is testable without
// sandboxes.
import { isUtf8 } from "node:buffer";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { type StructuredPatchHunk, structuredPatch } from "diff";
import { z } from "zod";

export const TreeEntry = z.object({
  path: z.string().min(1).describe("Relative POSIX path under the tree's root; the root itself is not listed."),
  type: z.enum(["file", "directory", "symlink", "other"]),
  mode: z.number().int().nonnegative().describe("Permission bits (mode & 0o7777)."),
  size: z.number().int().nonnegative().describe("Bytes for files, target length for symlinks, 0 otherwise."),
  sha256: z.string().optional().describe("Lowercase hex digest of the content; files only."),
  link_target: z.string().optional().describe("What the link points at, unresolved; symlinks only."),
});
export type TreeEntry = z.infer<typeof TreeEntry>;

export const ChangeStatus = z.enum(["added", "modified", "deleted", "type_changed"]);
export type ChangeStatus = z.infer<typeof ChangeStatus>;

export const Change = z.object({
  path: z.string(),
  status: ChangeStatus,
  before: TreeEntry.optional(),
  after: TreeEntry.optional(),
});
export type Change = z.infer<typeof Change>;

export { DiffFile, DiffResult } from "../contract/workspace.js";

import type { DiffFile, DiffResult } from "../contract/workspace.js";

export interface DiffIo {
  /** Bytes of a regular file in the baseline. Never called for symlinks, directories or others. */
  readBaseline(path: string): Promise<Buffer>;
  /** Bytes of a regular file in the current tree. Never called for symlinks, directories or others. */
  readCurrent(path: string): Promise<Buffer>;
}

export const DEFAULT_MAX_PATCH_BYTES = 1024 * 1024;
/** How many files are hashed or fetched at once: enough to hide latency, few enough for fds. */
const IO_CONCURRENCY = 16;
/** git's own heuristic window for NUL bytes. */
const BINARY_SNIFF_BYTES = 8192;
/** A pathological rewrite of a huge file must not stall the diff; past this we emit a full replace. */
const LINE_DIFF_TIMEOUT_MS = 2000;

// ---------------------------------------------------------------------------------------------
// Manifests

/** The manifest of a host directory, in the same format the guest agent returns for /workspace. */
export async function manifestOfDir(dir: string): Promise<TreeEntry[]> {
  const entries: TreeEntry[] = [];
  const files: TreeEntry[] = [];
  const pending = [""];
  while (pending.length > 0) {
    const rel = pending.pop()!;
    const names = await readdir(join(dir, rel));
    const infos = await mapLimit(names, IO_CONCURRENCY, async (name) => {
      const path = rel === "" ? name : `${rel}/${name}`;
      return { path, info: await lstat(join(dir, path)) };
    });
    for (const { path, info } of infos) {
      const mode = info.mode & 0o7777;
      if (info.isSymbolicLink()) {
        const target = await readlink(join(dir, path));
        entries.push({ path, type: "symlink", mode, size: Buffer.byteLength(target), link_target: target });
      } else if (info.isDirectory()) {
        entries.push({ path, type: "directory", mode, size: 0 });
        pending.push(path);
      } else if (info.isFile()) {
        const entry: TreeEntry = { path, type: "file", mode, size: info.size };
        entries.push(entry);
        files.push(entry);
      } else {
        entries.push({ path, type: "other", mode, size: 0 });
      }
    }
  }
  await mapLimit(files, IO_CONCURRENCY, async (entry) => {
    entry.sha256 = await sha256File(join(dir, entry.path), entry.size);
  });
  return entries.sort((a, b) => comparePaths(a.path, b.path));
}

async function sha256File(path: string, size: number): Promise<string> {
  const hash = createHash("sha256");
  // Small files in one read; big ones streamed so a large workspace cannot balloon host memory.
  if (size <= 4 * 1024 * 1024) return hash.update(await readFile(path)).digest("hex");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

// ---------------------------------------------------------------------------------------------
// Comparing

/**
 * What changed between two manifests, sorted by path.
 *
 * - A file is unchanged when its sha256 and permission bits are equal; a mode-only change is
 *   "modified". A symlink is "modified" when its target changes (symlink modes mean nothing).
 * - A path whose type differs is "type_changed" (file→symlink, file→directory, …).
 * - Directories (and "other" entries) never count as modified. An added or deleted directory
 *   counts only when nothing beneath it is listed, i.e. when it is empty on the side where it
 *   exists: like `git status`, a new directory full of files shows as its files, but unlike git an
 *   empty directory still shows, because reset and restore bring empty directories back.
 */
export function compareTrees(baseline: TreeEntry[], current: TreeEntry[]): Change[] {
  const before = new Map(baseline.map((e) => [e.path, e]));
  const after = new Map(current.map((e) => [e.path, e]));
  const changes: Change[] = [];
  for (const [path, b] of before) {
    const a = after.get(path);
    if (!a) changes.push({ path, status: "deleted", before: b });
    else if (a.type !== b.type) changes.push({ path, status: "type_changed", before: b, after: a });
    else if (contentChanged(b, a)) changes.push({ path, status: "modified", before: b, after: a });
  }
  for (const [path, a] of after) {
    if (!before.has(path)) changes.push({ path, status: "added", after: a });
  }

  const hasListedDescendant = new Set<string>();
  for (const change of changes) {
    for (let i = change.path.indexOf("/"); i !== -1; i = change.path.indexOf("/", i + 1)) {
      hasListedDescendant.add(change.path.slice(0, i));
    }
  }
  return changes
    .filter((c) => {
      const entry = c.after ?? c.before!;
      const isDirAddOrDelete = entry.type === "directory" && (c.status === "added" || c.status === "deleted");
      return !(isDirAddOrDelete && hasListedDescendant.has(c.path));
    })
    .sort((x, y) => comparePaths(x.path, y.path));
}

function contentChanged(b: TreeEntry, a: TreeEntry): boolean {
  switch (b.type) {
    case "file":
      return b.sha256 !== a.sha256 || (b.mode & 0o7777) !== (a.mode & 0o7777);
    case "symlink":
      return b.link_target !== a.link_target;
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering

interface Side {
  gitMode: string;
  text: string;
}

interface Rendered {
  file: DiffFile;
  /** Sections that remove a path; emitted before every other section (see buildDiff). */
  removals: string[];
  others: string[];
}

/**
 * The contract's diff payload for a list of changes.
 *
 * Patch decisions, so the patch stays appliable by `git apply` and `patch -p1`:
 * - Binary files (a NUL in the first 8 KiB, or not valid UTF-8) are listed in `files` and counted
 *   in `summary.binary` but left out of the patch entirely: git's "Binary files … differ" line
 *   makes `git apply` reject the whole patch. A type change with a binary side is left out whole.
 * - Directories and "other" entries cannot be expressed in a patch; they are listed only.
 * - Git stores file modes as 100644/100755 only, so a permission change that keeps the owner's
 *   execute bit (e.g. 644→600) is "modified" in `files` but has no patch section.
 * - Sections that delete a path come first, then additions and modifications, each in path order:
 *   `patch -p1` applies in order, and a file replaced by a directory (or the reverse) needs the
 *   old path gone before the new one is created.
 * - The patch is cut at a section boundary once it would exceed `maxPatchBytes`; what remains
 *   still applies, and `patch_truncated` says it is partial.
 */
export async function buildDiff(
  changes: Change[],
  io: DiffIo,
  opts: { maxPatchBytes?: number } = {},
): Promise<DiffResult> {
  const maxPatchBytes = opts.maxPatchBytes ?? DEFAULT_MAX_PATCH_BYTES;
  const rendered = await mapLimit(changes, IO_CONCURRENCY, (change) => renderChange(change, io));

  const summary = { total: changes.length, added: 0, modified: 0, deleted: 0, type_changed: 0, binary: 0 };
  for (const { file } of rendered) {
    summary[file.status] += 1;
    if (file.binary) summary.binary += 1;
  }

  const sections = [...rendered.flatMap((r) => r.removals), ...rendered.flatMap((r) => r.others)];
  let patch = "";
  let bytes = 0;
  let patchTruncated = false;
  for (const section of sections) {
    const size = Buffer.byteLength(section);
    if (bytes + size > maxPatchBytes) {
      patchTruncated = true;
      break;
    }
    patch += section;
    bytes += size;
  }

  return {
    changed: changes.length > 0,
    summary,
    patch,
    files: rendered.map((r) => r.file),
    patch_truncated: patchTruncated,
  };
}

async function renderChange(change: Change, io: DiffIo): Promise<Rendered> {
  const { path, status, before, after } = change;
  const out: Rendered = { file: { path, status, binary: false }, removals: [], others: [] };

  // A file whose bytes are unchanged (mode-only change) is read once, from the host-side baseline.
  const sameBytes = before?.type === "file" && after?.type === "file" && before.sha256 === after.sha256;
  const [oldSide, newSide] = await Promise.all([
    before ? readSide(before, () => io.readBaseline(path)) : undefined,
    after ? (sameBytes ? undefined : readSide(after, () => io.readCurrent(path))) : undefined,
  ]);
  const newResolved =
    sameBytes && oldSide && oldSide !== "binary" ? { text: oldSide.text, gitMode: gitMode(after!) } : newSide;

  if (oldSide === "binary" || newResolved === "binary") {
    out.file.binary = true;
    return out;
  }

  if (status === "modified" && oldSide && newResolved) {
    const section = modifySection(path, oldSide, newResolved);
    if (section) out.others.push(section);
  } else {
    // added, deleted, type_changed: whichever sides are patchable (files, symlinks) become a
    // deletion and/or a creation of the same path, which is how git renders a type change.
    if (oldSide) out.removals.push(deleteSection(path, oldSide));
    if (newResolved) out.others.push(addSection(path, newResolved));
  }
  return out;
}

/** The patchable view of one side, "binary" for a file that is not text, undefined for dirs/others. */
async function readSide(entry: TreeEntry, read: () => Promise<Buffer>): Promise<Side | "binary" | undefined> {
  if (entry.type === "symlink") {
    // Git's representation: the target, without a trailing newline, as the content of a 120000 blob.
    return { gitMode: "120000", text: entry.link_target ?? "" };
  }
  if (entry.type !== "file") return undefined;
  const bytes = await read();
  if (bytes.subarray(0, BINARY_SNIFF_BYTES).includes(0) || !isUtf8(bytes)) return "binary";
  return { gitMode: gitMode(entry), text: bytes.toString("utf8") };
}

function gitMode(entry: TreeEntry): string {
  if (entry.type === "symlink") return "120000";
  return entry.mode & 0o100 ? "100755" : "100644";
}

function addSection(path: string, side: Side): string {
  let out = `diff --git ${quote(`a/${path}`)} ${quote(`b/${path}`)}\nnew file mode ${side.gitMode}\n`;
  // An empty new file is the header alone, exactly as git writes it.
  if (side.text !== "") {
    out += `index ${NULL_BLOB}..${blobId(side.text)}\n`;
    out += `--- /dev/null\n+++ ${headerName(`b/${path}`)}\n${hunks("", side.text)}`;
  }
  return out;
}

function deleteSection(path: string, side: Side): string {
  let out = `diff --git ${quote(`a/${path}`)} ${quote(`b/${path}`)}\ndeleted file mode ${side.gitMode}\n`;
  if (side.text !== "") {
    out += `index ${blobId(side.text)}..${NULL_BLOB}\n`;
    out += `--- ${headerName(`a/${path}`)}\n+++ /dev/null\n${hunks(side.text, "")}`;
  }
  return out;
}

function modifySection(path: string, oldSide: Side, newSide: Side): string | undefined {
  const modeChanged = oldSide.gitMode !== newSide.gitMode;
  const textChanged = oldSide.text !== newSide.text;
  if (!modeChanged && !textChanged) return undefined;
  let out = `diff --git ${quote(`a/${path}`)} ${quote(`b/${path}`)}\n`;
  if (modeChanged) out += `old mode ${oldSide.gitMode}\nnew mode ${newSide.gitMode}\n`;
  if (textChanged) {
    // GNU patch learns from the index line's mode that a path is a symlink; git writes it too.
    out += `index ${blobId(oldSide.text)}..${blobId(newSide.text)}${modeChanged ? "" : ` ${newSide.gitMode}`}\n`;
    out += `--- ${headerName(`a/${path}`)}\n+++ ${headerName(`b/${path}`)}\n${hunks(oldSide.text, newSide.text)}`;
  }
  return out;
}

const NULL_BLOB = "0000000";

/** git's abbreviated blob id of a text: sha1 over "blob <bytes>\0<content>". */
function blobId(text: string): string {
  const bytes = Buffer.from(text, "utf8");
  return createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex").slice(0, 7);
}

/** The hunks between two texts, 3 lines of context, as unified-diff text ending in a newline. */
function hunks(oldText: string, newText: string): string {
  const patch = structuredPatch("a", "b", oldText, newText, undefined, undefined, {
    context: 3,
    timeout: LINE_DIFF_TIMEOUT_MS,
  });
  const list = patch?.hunks ?? [fullReplacement(oldText, newText)];
  return list.map(formatHunk).join("");
}

/** One hunk that removes every old line and adds every new one, built from jsdiff's own hunks. */
function fullReplacement(oldText: string, newText: string): StructuredPatchHunk {
  const removed = structuredPatch("a", "b", oldText, "", undefined, undefined, { context: 0 }).hunks[0];
  const added = structuredPatch("a", "b", "", newText, undefined, undefined, { context: 0 }).hunks[0];
  return {
    oldStart: 1,
    oldLines: removed?.oldLines ?? 0,
    newStart: 1,
    newLines: added?.newLines ?? 0,
    lines: [...(removed?.lines ?? []), ...(added?.lines ?? [])],
  };
}

function formatHunk(hunk: StructuredPatchHunk): string {
  // Unified-diff quirk: an empty range names the line before it (so "-0,0" for a new file).
  const oldStart = hunk.oldLines === 0 ? hunk.oldStart - 1 : hunk.oldStart;
  const newStart = hunk.newLines === 0 ? hunk.newStart - 1 : hunk.newStart;
  return `@@ -${oldStart},${hunk.oldLines} +${newStart},${hunk.newLines} @@\n${hunk.lines.join("\n")}\n`;
}

/** git's C-style quoting, for names git itself would quote (control characters, `"` and `\`). */
function quote(name: string): string {
  if (!/[\x00-\x1f"\\\x7f]/.test(name)) return name;
  const escaped = name.replace(/[\x00-\x1f"\\\x7f]/g, (ch) => {
    const named: Record<string, string> = {
      "\x07": "\\a",
      "\b": "\\b",
      "\t": "\\t",
      "\n": "\\n",
      "\v": "\\v",
      "\f": "\\f",
      "\r": "\\r",
      '"': '\\"',
      "\\": "\\\\",
    };
    return named[ch] ?? `\\${ch.charCodeAt(0).toString(8).padStart(3, "0")}`;
  });
  return `"${escaped}"`;
}

/** A ---/+++ name; git ends names containing a space with a tab so `patch` reads the whole name. */
function headerName(name: string): string {
  const quoted = quote(name);
  return quoted === name && name.includes(" ") ? `${name}\t` : quoted;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** Code-unit order: the same order on both sides of the channel, and git's for ASCII names. */
function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Like Promise.all over items.map(fn), with at most `limit` calls in flight; keeps input order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
