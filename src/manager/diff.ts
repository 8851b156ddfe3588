// Owns `workspace diff` on the host: the comparison of a baseline manifest with the current one
// (the format is contract/tree.ts, made by util/tree.ts on both sides), which of those changes are
// shown (the repository's ignore rules, .git/ internals, the caller's path filters), and the
// rendering of them as the contract's diff payload, a git-style unified patch that `git apply` and
// `patch -p1` accept. `workspace diff` and `workspace summary` both go through selectChanges. All
// I/O is injected, so it is testable without sandboxes.

import { TreeEntry } from "../channel/protocol.js";

export { TreeEntry };

import { isUtf8 } from "node:buffer";
import { createHash } from "node:crypto";
import { open, readFile } from "node:fs/promises";
import { type StructuredPatchHunk, structuredPatch } from "diff";
import ignore, { type Ignore } from "ignore";
import pMap from "p-map";
import { z } from "zod";

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

import type { DiffFile, DiffOmission, DiffResult } from "../contract/workspace.js";
import { comparePaths } from "../util/tree.js";
import { compareTreeOrder } from "../util/tree-walk.js";

export interface DiffIo {
  /**
   * Bytes of a regular file in the baseline; with maxBytes, at least the first maxBytes of it (or
   * all of a shorter file) and preferably no more. Never called for symlinks, directories or others.
   */
  readBaseline(path: string, maxBytes?: number): Promise<Buffer>;
  /** The same for a regular file in the current tree. */
  readCurrent(path: string, maxBytes?: number): Promise<Buffer>;
}

export const DEFAULT_MAX_PATCH_BYTES = 1024 * 1024;
/** A file side larger than this is never read for the patch: its change is listed as too_large. */
export const DEFAULT_MAX_FILE_BYTES = 4 * 1024 * 1024;
/** How many bytes of files one batch of renders may hold at once (one file may exceed it alone). */
const READ_BATCH_BYTES = 32 * 1024 * 1024;
/** A .gitignore or info/exclude file larger than this is not read (git's own limit is 100 MiB). */
const MAX_RULES_FILE_BYTES = 4 * 1024 * 1024;
/** How many files are hashed or fetched at once: enough to hide latency, few enough for fds. */
const IO_CONCURRENCY = 16;
/** git's own heuristic window for NUL bytes. */
const BINARY_SNIFF_BYTES = 8192;
/** A pathological rewrite of a huge file must not stall the diff; past this we emit a full replace. */
const LINE_DIFF_TIMEOUT_MS = 2000;

// ---------------------------------------------------------------------------------------------
// Manifests

/** A host file's bytes for a DiffIo: whole, or (maxBytes) its first bytes without reading the rest. */
export async function readHostFile(path: string, maxBytes?: number): Promise<Buffer> {
  if (maxBytes === undefined) return readFile(path);
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.alloc(maxBytes);
    const { bytesRead } = await handle.read(buffer, 0, maxBytes, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Comparing

/** The changes between two trees, and the ignore files of each (all selectChanges reads of them). */
export interface Compared {
  changes: Change[];
  baselineRules: TreeEntry[];
  currentRules: TreeEntry[];
}

/**
 * What changed between two manifests, each a stream in tree order (util/tree-walk.ts), sorted by
 * path. Only the changes and the ignore files are kept, so a tree of a million entries costs the
 * memory of what changed in it.
 *
 * - A file is unchanged when its sha256 and permission bits are equal; a mode-only change is
 *   "modified". A symlink is "modified" when its target changes (symlink modes mean nothing).
 * - A path whose type differs is "type_changed" (file→symlink, file→directory, …).
 * - Directories (and "other" entries) never count as modified. An added or deleted directory
 *   counts only when nothing beneath it is listed, i.e. when it is empty on the side where it
 *   exists: like `git status`, a new directory full of files shows as its files, but unlike git an
 *   empty directory still shows, because reset and restore bring empty directories back.
 */
export async function compareTreeStreams(
  baseline: AsyncIterable<TreeEntry> | Iterable<TreeEntry>,
  current: AsyncIterable<TreeEntry> | Iterable<TreeEntry>,
): Promise<Compared> {
  const compared: Compared = { changes: [], baselineRules: [], currentRules: [] };
  const changes = compared.changes;
  const before = iterate(baseline);
  const after = iterate(current);
  try {
    let b = await before.next();
    let a = await after.next();
    while (!b.done || !a.done) {
      const order = b.done ? 1 : a.done ? -1 : compareTreeOrder(b.value.path, a.value.path);
      if (order <= 0 && !b.done && isRulesFile(b.value.path)) compared.baselineRules.push(b.value);
      if (order >= 0 && !a.done && isRulesFile(a.value.path)) compared.currentRules.push(a.value);
      if (order < 0) {
        changes.push({ path: b.value!.path, status: "deleted", before: b.value });
      } else if (order > 0) {
        changes.push({ path: a.value!.path, status: "added", after: a.value });
      } else if (a.value!.type !== b.value!.type) {
        changes.push({ path: a.value!.path, status: "type_changed", before: b.value, after: a.value });
      } else if (contentChanged(b.value!, a.value!)) {
        changes.push({ path: a.value!.path, status: "modified", before: b.value, after: a.value });
      }
      if (order <= 0) b = await before.next();
      if (order >= 0) a = await after.next();
    }
  } finally {
    await Promise.all([before.return?.(undefined), after.return?.(undefined)]);
  }

  const hasListedDescendant = new Set<string>();
  for (const change of changes) {
    for (let i = change.path.indexOf("/"); i !== -1; i = change.path.indexOf("/", i + 1)) {
      hasListedDescendant.add(change.path.slice(0, i));
    }
  }
  compared.changes = changes
    .filter((c) => {
      const entry = c.after ?? c.before!;
      const isDirAddOrDelete = entry.type === "directory" && (c.status === "added" || c.status === "deleted");
      return !(isDirAddOrDelete && hasListedDescendant.has(c.path));
    })
    .sort((x, y) => comparePaths(x.path, y.path));
  return compared;
}

/** compareTreeStreams of two whole manifests, in any order. */
export async function compareTrees(baseline: TreeEntry[], current: TreeEntry[]): Promise<Change[]> {
  const inTreeOrder = (entries: TreeEntry[]) => [...entries].sort((x, y) => compareTreeOrder(x.path, y.path));
  return (await compareTreeStreams(inTreeOrder(baseline), inTreeOrder(current))).changes;
}

function iterate<T>(source: AsyncIterable<T> | Iterable<T>): AsyncIterator<T> | Iterator<T> {
  return Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
}

/** The files repositoryRules reads: every .gitignore and each repository's info/exclude. */
function isRulesFile(path: string): boolean {
  return (
    path === ".gitignore" ||
    path.endsWith("/.gitignore") ||
    path === ".git/info/exclude" ||
    path.endsWith("/.git/info/exclude")
  );
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
// Selecting

export interface DiffFilters {
  /** Keep what the repository's ignore rules and .git/ internals would leave out (the old behaviour). */
  includeIgnored?: boolean;
  /** .gitignore-syntax patterns relative to the root; when given, only changes matching one are kept. */
  paths?: readonly string[];
  /** .gitignore-syntax patterns; changes matching one are left out. */
  exclude?: readonly string[];
}

export interface Selection {
  changes: Change[];
  /** How many changes the repository's ignore rules or .git/ internals left out. */
  ignored: number;
}

/** The sides selectChanges may read: entries of each side's ignore files (compareTreeStreams
 * keeps them; a whole manifest also serves) and the bytes of their files. */
export interface Trees extends DiffIo {
  baseline: TreeEntry[];
  current: TreeEntry[];
}

/**
 * The changes to show, and how many were left out as ignored.
 *
 * - The caller's `paths` and `exclude` go first: what they leave out was asked for and is not counted.
 * - Anything inside a `.git` directory (at any depth, i.e. also a nested repository's) is ignored;
 *   `.gitignore` itself is an ordinary file.
 * - A change is ignored when the repository's rules ignore its path, as `git status` would judge an
 *   untracked path: every `.gitignore` at any depth (deeper files win, a directory's rules apply
 *   beneath it), then each repository's `.git/info/exclude`. A path that still exists (added,
 *   modified, type_changed) is judged by the rules as they are now, a deleted path by the rules of
 *   the baseline, so deleting a directory together with its own .gitignore hides its ignored files
 *   too. Unlike git, a path that matches a rule is left out even if the repository tracks it; the
 *   count in `ignored` and include_ignored keep that visible. The user's global git excludes file is
 *   not consulted.
 */
export async function selectChanges(changes: Change[], trees: Trees, filters: DiffFilters = {}): Promise<Selection> {
  const wanted = filters.paths?.length ? patternMatcher(filters.paths) : undefined;
  const unwanted = filters.exclude?.length ? patternMatcher(filters.exclude) : undefined;
  const asked = changes.filter((c) => {
    const subject = subjectOf(c);
    return (wanted === undefined || wanted.ignores(subject)) && !unwanted?.ignores(subject);
  });
  if (filters.includeIgnored) return { changes: asked, ignored: 0 };

  // Each side's rules are read only when a change needs them (a diff with no deletions never reads
  // the baseline's .gitignore files).
  const currentRules = once(() => repositoryRules(trees.current, trees.readCurrent));
  const baselineRules = once(() => repositoryRules(trees.baseline, trees.readBaseline));
  const kept: Change[] = [];
  let ignored = 0;
  for (const change of asked) {
    const isIgnored =
      isInsideGit(change.path) || (await (change.after ? currentRules() : baselineRules())).ignores(subjectOf(change));
    if (isIgnored) ignored += 1;
    else kept.push(change);
  }
  return { changes: kept, ignored };
}

/** What the patterns see: the path, with a trailing slash for a directory as gitignore expects. */
function subjectOf(change: Change): string {
  const entry = change.after ?? change.before!;
  return entry.type === "directory" ? `${change.path}/` : change.path;
}

function isInsideGit(path: string): boolean {
  return path.split("/").includes(".git");
}

/** The caller's patterns as one matcher; `/workspace/x` and `./x` mean the top-level `x`. */
function patternMatcher(patterns: readonly string[]): Ignore {
  return ignore({ ignorecase: false }).add(
    patterns.map((p) => {
      if (p === "/workspace" || p === "/workspace/") return "*";
      if (p.startsWith("/workspace/")) return p.slice("/workspace".length);
      if (p.startsWith("./")) return p.slice(1);
      return p;
    }),
  );
}

/**
 * One matcher over root-relative paths for every ignore file in a tree. Each `.gitignore` line is
 * re-rooted at the tree's root (see rebasePattern) and files are added shallowest first, so that the
 * library's "last matching rule wins" is git's "the deeper .gitignore wins"; `info/exclude` files
 * go in before them all, being weaker than any .gitignore. A `.gitignore` inside a directory the
 * rules above already ignore is never read, as git never reads it (node_modules/x/.gitignore).
 */
async function repositoryRules(entries: TreeEntry[], read: (path: string) => Promise<Buffer>): Promise<Ignore> {
  const rules = ignore({ ignorecase: false });
  const readable = (e: TreeEntry) => e.type === "file" && e.size <= MAX_RULES_FILE_BYTES;
  const addFile = async (dir: string, path: string) => {
    const text = (await read(path)).toString("utf8").replace(/^\uFEFF/, "");
    rules.add(text.split(/\r?\n/).flatMap((line) => rebasePattern(line, dir) ?? []));
  };
  for (const e of entries) {
    if (!readable(e)) continue;
    if (e.path === ".git/info/exclude") await addFile("", e.path);
    else if (e.path.endsWith("/.git/info/exclude"))
      await addFile(e.path.slice(0, -"/.git/info/exclude".length), e.path);
  }
  const gitignores = entries
    .filter((e) => readable(e) && (e.path === ".gitignore" || e.path.endsWith("/.gitignore")) && !isInsideGit(e.path))
    .map((e) => e.path)
    .sort((a, b) => depth(a) - depth(b) || comparePaths(a, b));
  for (const path of gitignores) {
    const dir = path.slice(0, Math.max(0, path.lastIndexOf("/")));
    if (dir !== "" && rules.ignores(`${dir}/`)) continue;
    await addFile(dir, path);
  }
  return rules;
}

function depth(path: string): number {
  let n = 0;
  for (const ch of path) if (ch === "/") n += 1;
  return n;
}

// A line of `DIR/.gitignore` as a rule relative to the root: git anchors a pattern with a slash at
// its start or middle to DIR (`/build` → `DIR/build`), and lets one without match at any depth
// beneath DIR (`*.o` → `DIR/**/*.o`). undefined for blank lines and comments.
function rebasePattern(line: string, dir: string): string | undefined {
  if (line.trim() === "" || line.startsWith("#")) return undefined;
  if (dir === "") return line;
  const negated = line.startsWith("!");
  const body = negated ? line.slice(1) : line;
  const stem = body.trimEnd().replace(/\/+$/, "");
  if (stem === "") return undefined;
  const anchored = stem.includes("/");
  const rest = body.startsWith("/") ? body.slice(1) : body;
  return `${negated ? "!" : ""}${escapeGlob(dir)}/${anchored ? "" : "**/"}${rest}`;
}

/** A directory name as a literal gitignore prefix: glob characters, and a leading ! or #, escaped. */
function escapeGlob(dir: string): string {
  return dir.replace(/[\\*?[\]]/g, "\\$&").replace(/^[!#]/, "\\$&");
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

/** Changes that enter or leave the patch together: a type change and the changes beneath it. */
interface Unit {
  /** Indexes into buildDiff's changes. */
  members: number[];
  /** Bytes of the sides' content, from the manifests: the order in which units may take room. */
  weight: number;
  /** Bytes the unit's sections take at least: headers, and all of an added or deleted file. */
  floor: number;
  /** A file side over maxFileBytes: never read. */
  oversized: boolean;
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
 *
 * The size cap, so that what is cut is never the one-line edit and never silently:
 * - Changes take room in the patch smallest first, by the sizes in the manifests (a one-line edit
 *   to a small source file before a regenerated 900 KiB bundle), greedily: a change that does not
 *   fit is left out and smaller-than-expected ones after it may still go in. The patch itself
 *   stays in path order, whatever order the room was taken in.
 * - A type change and the changes beneath its path go in or stay out together, so the patch
 *   always applies.
 * - Every change with text that is left out is named in `patch_omitted` with its reason, and
 *   `patch_truncated` is true. A change that cannot fit (a side over `maxFileBytes`, an added or
 *   deleted file larger than the room left) is never read whole, only its first 8 KiB to tell a
 *   binary file, which misses nothing, from text; memory stays bounded by the cap plus a batch of
 *   files in flight.
 */
export async function buildDiff(
  changes: Change[],
  io: DiffIo,
  opts: { maxPatchBytes?: number; maxFileBytes?: number } = {},
): Promise<DiffResult> {
  const maxPatchBytes = opts.maxPatchBytes ?? DEFAULT_MAX_PATCH_BYTES;
  const maxFileBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;

  const files: DiffFile[] = changes.map(({ path, status }) => ({ path, status, binary: false }));
  const included: (Rendered | undefined)[] = new Array(changes.length);
  const omitted: DiffOmission[] = [];
  const omit = (unit: Pick<Unit, "members">, reason: DiffOmission["reason"], rendered?: Rendered[]) => {
    unit.members.forEach((index, i) => {
      const r = rendered?.[i];
      // What a rendered change would have put in the patch, or (unread) whether it has text at all.
      const hasText = r ? r.removals.length + r.others.length > 0 : hasPatchableSide(changes[index]!);
      if (hasText) omitted.push({ path: changes[index]!.path, reason });
    });
  };

  let used = 0;
  const units = unitsOf(changes, maxFileBytes).sort(
    (x, y) => x.weight - y.weight || comparePaths(changes[x.members[0]!]!.path, changes[y.members[0]!]!.path),
  );
  for (let next = 0; next < units.length; ) {
    // A unit that can no longer fit is not read, only sniffed: a binary file is not missing anything.
    const room = maxPatchBytes - used;
    const skipped = (unit: Unit) => unit.oversized || unit.floor > room;
    // A batch: up to IO_CONCURRENCY units at once, reading at most READ_BATCH_BYTES of files.
    const batch: Unit[] = [];
    let batchBytes = 0;
    while (next < units.length && batch.length < IO_CONCURRENCY) {
      const unit = units[next]!;
      const bytes = skipped(unit) ? 0 : unit.weight;
      if (batch.length > 0 && batchBytes + bytes > READ_BATCH_BYTES) break;
      batch.push(unit);
      batchBytes += bytes;
      next += 1;
    }
    const outcomes = await Promise.all(
      batch.map(async (unit) => {
        const members = unit.members.map((index) => changes[index]!);
        if (skipped(unit))
          return { binary: await pMap(members, (change) => sniffBinary(change, io), { concurrency: 4 }) };
        return { rendered: await pMap(members, (change) => renderChange(change, io), { concurrency: 4 }) };
      }),
    );
    batch.forEach((unit, b) => {
      const { rendered, binary } = outcomes[b]!;
      if (!rendered) {
        const text = unit.members.filter((index, i) => {
          if (binary?.[i]) files[index]!.binary = true;
          return !binary?.[i];
        });
        omit({ ...unit, members: text }, unit.oversized || unit.floor > maxPatchBytes ? "too_large" : "size_cap");
        return;
      }
      unit.members.forEach((index, i) => {
        files[index] = rendered[i]!.file;
      });
      const size = rendered.reduce(
        (sum, r) => sum + [...r.removals, ...r.others].reduce((n, section) => n + Buffer.byteLength(section), 0),
        0,
      );
      if (size > maxPatchBytes) omit(unit, "too_large", rendered);
      else if (used + size > maxPatchBytes) omit(unit, "size_cap", rendered);
      else {
        used += size;
        unit.members.forEach((index, i) => {
          included[index] = rendered[i];
        });
      }
    });
  }

  const summary = { ...countChanges(changes), binary: files.filter((f) => f.binary).length };
  const kept = included.filter((r): r is Rendered => r !== undefined);
  const patch = [...kept.flatMap((r) => r.removals), ...kept.flatMap((r) => r.others)].join("");
  omitted.sort((a, b) => comparePaths(a.path, b.path));
  return {
    changed: changes.length > 0,
    summary,
    patch,
    files,
    patch_truncated: omitted.length > 0,
    patch_omitted: omitted,
  };
}

/** The changes grouped for the patch (see buildDiff), each with its weight and floor. */
function unitsOf(changes: Change[], maxFileBytes: number): Unit[] {
  const typeChanged = new Set(changes.filter((c) => c.status === "type_changed").map((c) => c.path));
  const byOwner = new Map<string, Unit>();
  const units: Unit[] = [];
  changes.forEach((change, index) => {
    const owner = outermostTypeChange(change.path, typeChanged);
    let unit = owner === undefined ? undefined : byOwner.get(owner);
    if (!unit) {
      unit = { members: [], weight: 0, floor: 0, oversized: false };
      units.push(unit);
      if (owner !== undefined) byOwner.set(owner, unit);
    }
    unit.members.push(index);
    const sides = [change.before, change.after].filter(
      (e): e is TreeEntry => e !== undefined && (e.type === "file" || e.type === "symlink"),
    );
    if (sides.length === 0) return;
    const bytes = sides.reduce((n, e) => n + e.size, 0);
    unit.weight += bytes;
    // Every section starts with `diff --git a/P b/P`; an added or deleted file is there in full.
    unit.floor += 2 * Buffer.byteLength(change.path) + 16 + (change.status === "modified" ? 0 : bytes);
    if (sides.some((e) => e.type === "file" && e.size > maxFileBytes)) unit.oversized = true;
  });
  return units;
}

/** The shortest of `path` and its ancestors that changed type, if any. */
function outermostTypeChange(path: string, typeChanged: ReadonlySet<string>): string | undefined {
  if (typeChanged.size === 0) return undefined;
  for (let i = path.indexOf("/"); i !== -1; i = path.indexOf("/", i + 1)) {
    if (typeChanged.has(path.slice(0, i))) return path.slice(0, i);
  }
  return typeChanged.has(path) ? path : undefined;
}

/** The per-status counts of a list of changes, as diff's summary and workspace summary give them. */
export function countChanges(changes: readonly Change[]): Record<"total" | ChangeStatus, number> {
  const counts = { total: changes.length, added: 0, modified: 0, deleted: 0, type_changed: 0 };
  for (const change of changes) counts[change.status] += 1;
  return counts;
}

/** Whether a change has a binary side, judged from the first bytes of its files only. */
async function sniffBinary(change: Change, io: DiffIo): Promise<boolean> {
  const { path, before, after } = change;
  const sameBytes = before?.type === "file" && after?.type === "file" && before.sha256 === after.sha256;
  const heads = await Promise.all([
    before?.type === "file" ? io.readBaseline(path, BINARY_SNIFF_BYTES) : undefined,
    after?.type === "file" && !sameBytes ? io.readCurrent(path, BINARY_SNIFF_BYTES) : undefined,
  ]);
  return heads.some((head) => head?.subarray(0, BINARY_SNIFF_BYTES).includes(0));
}

function hasPatchableSide(change: Change): boolean {
  return [change.before, change.after].some((e) => e?.type === "file" || e?.type === "symlink");
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

/** fn's promise, made on the first call and shared by every later one. */
function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => {
    made ??= fn();
    return made;
  };
}
