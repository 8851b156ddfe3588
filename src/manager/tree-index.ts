// Owns the two manifests a diff compares, as streams in tree order: the baseline's, written once at
// create, and the layer's, walked at each diff beside an index of the digests it took last time, so
// that only files whose stat changed are read. A million-file workspace is then compared in the
// time of a million lstats and the memory of one directory's listing.
import { access, readFile } from "node:fs/promises";
import { join } from "node:path";
import pMap from "p-map";
import { z } from "zod";
import { PyroError } from "../contract/errors.js";
import { TreeEntry } from "../contract/tree.js";
import { sha256File } from "../util/tree.js";
import { compareTreeOrder, inBatches, NdjsonWriter, readNdjson, walkTree } from "../util/tree-walk.js";
import type { WorkspacePaths } from "./records.js";

/** A file's digest and the stat it was taken at (bigints as decimal strings). */
interface IndexLine {
  p: string;
  i: string;
  s: string;
  m: string;
  c: string;
  h: string;
}

/** Files hashed at once (only those whose stat changed since the last walk). */
const HASH_CONCURRENCY = 16;
const BATCH = 256;
/** A digest is kept only for a file last changed this long before the walk began: a write in the
 * same clock tick as the walk could leave size and times as they were (git's "racily clean"). */
const SETTLED_NS = 1_000_000_000n;

/**
 * The entries of `layer` in tree order, files with their sha256. A file whose inode, size, mtime and
 * ctime are those the index recorded keeps the recorded digest; the others are read. ctime is the
 * host kernel's, set on every write and chmod, and no guest can set it back. When the walk ends,
 * the index is replaced by what this walk saw; a walk cut short leaves the old one.
 */
export async function* layerTree(layer: string, indexPath: string): AsyncGenerator<TreeEntry> {
  const started = BigInt(Date.now()) * 1_000_000n;
  const known = new IndexCursor(indexPath);
  const next = new NdjsonWriter(indexPath);
  try {
    for await (const batch of inBatches(walkTree(layer), BATCH)) {
      const unknown: TreeEntry[] = [];
      for (const { entry, stat } of batch) {
        if (entry.type !== "file") continue;
        const line = await known.find(entry.path);
        if (
          line &&
          line.i === String(stat.ino) &&
          line.s === String(stat.size) &&
          line.m === String(stat.mtimeNs) &&
          line.c === String(stat.ctimeNs)
        ) {
          entry.sha256 = line.h;
        } else {
          unknown.push(entry);
        }
      }
      await pMap(
        unknown,
        async (entry) => {
          entry.sha256 = await sha256File(join(layer, entry.path), entry.size);
        },
        { concurrency: HASH_CONCURRENCY },
      );
      for (const { entry, stat } of batch) {
        if (entry.type === "file" && stat.ctimeNs < started - SETTLED_NS && stat.mtimeNs < started - SETTLED_NS) {
          const line: IndexLine = {
            p: entry.path,
            i: String(stat.ino),
            s: String(stat.size),
            m: String(stat.mtimeNs),
            c: String(stat.ctimeNs),
            h: entry.sha256!,
          };
          await next.write(line);
        }
        yield entry;
      }
    }
    await next.commit();
  } finally {
    await next.discard();
    await known.close();
  }
}

/** Walks `layer` (the sandbox is not running) into the baseline's manifest, and indexes the layer. */
export async function writeBaselineManifest(layer: string, paths: WorkspacePaths): Promise<void> {
  const out = new NdjsonWriter(paths.baselineManifest);
  try {
    for await (const entry of layerTree(layer, paths.layerIndex)) await out.write(entry);
    await out.commit();
  } finally {
    await out.discard();
  }
}

/** The baseline's manifest in tree order; a workspace made before manifests were streamed has
 * one JSON array instead, read whole. */
export async function* baselineTree(paths: WorkspacePaths): AsyncGenerator<TreeEntry> {
  const streamed = await access(paths.baselineManifest).then(
    () => true,
    () => false,
  );
  if (streamed) {
    yield* readNdjson<TreeEntry>(paths.baselineManifest, (line) => damagedBaseline(paths, `line ${line} is not JSON`));
    return;
  }
  const text = await readFile(paths.legacyBaselineManifest, "utf8").catch(() => {
    throw damagedBaseline(paths, "it is missing");
  });
  const parsed = z.array(TreeEntry).safeParse(JSON.parse(text));
  if (!parsed.success) throw damagedBaseline(paths, "it is not a manifest");
  yield* parsed.data.sort((a, b) => compareTreeOrder(a.path, b.path));
}

function damagedBaseline(paths: WorkspacePaths, why: string): PyroError {
  return new PyroError(
    "INTERNAL",
    `the baseline manifest of this workspace (${paths.baselineManifest}) cannot be read: ${why}; diff cannot compare against it — reset the workspace or create it again`,
  );
}

/** Reads the index forward, in step with a walk in the same order. The index is a cache: a line
 * that cannot be read ends it, and the files after it are hashed again. */
class IndexCursor {
  private readonly lines: AsyncGenerator<IndexLine>;
  private head: IndexLine | undefined;
  private ended = false;

  constructor(path: string) {
    this.lines = readNdjson<IndexLine>(path, () => new Error("damaged index"));
  }

  async find(path: string): Promise<IndexLine | undefined> {
    while (!this.ended && (this.head === undefined || compareTreeOrder(this.head.p, path) < 0)) {
      try {
        const next = await this.lines.next();
        if (next.done || typeof next.value?.p !== "string") this.ended = true;
        else this.head = next.value;
      } catch {
        this.ended = true;
      }
    }
    if (this.head !== undefined && this.head.p === path) return this.head;
    return undefined;
  }

  async close(): Promise<void> {
    await this.lines.return(undefined).catch(() => {});
  }
}
