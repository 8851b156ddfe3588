// Owns extracting a tar stream into a directory safely, for the agent inside the sandbox and for the
// host seeding a workspace whose sandbox has not started: hostile entries (`..`, absolute paths,
// devices, FIFOs, links that escape, entries through links) refuse the whole archive, which is
// staged first so a refused one changes nothing.
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { lstat, mkdir, readdir, rename, rm } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize } from "node:path";
import * as tar from "tar";
import { PyroError } from "../contract/errors.js";

const ALLOWED = new Set(["File", "OldFile", "ContiguousFile", "Directory", "SymbolicLink", "Link"]);

/** Why an archive entry is refused, or undefined when it may be extracted. */
export function entryProblem(
  entry: { path: string; type: string; linkpath?: string },
  links: Set<string>,
): PyroError | undefined {
  const name = entry.path;
  if (isAbsolute(name))
    return new PyroError(
      "PATH_OUTSIDE_WORKSPACE",
      `archive entry ${name} has an absolute path; archives must hold relative paths`,
    );
  const parts = name.split("/").filter((p) => p && p !== ".");
  if (parts.includes(".."))
    return new PyroError("PATH_OUTSIDE_WORKSPACE", `archive entry ${name} climbs out with ".."`);
  if (!ALLOWED.has(entry.type)) {
    return new PyroError(
      "INVALID_ARGUMENT",
      `archive entry ${name} is a ${entry.type}; only files, directories and links are accepted`,
    );
  }
  const clean = parts.join("/");
  if (clean === "" && entry.type !== "Directory") {
    return new PyroError(
      "INVALID_ARGUMENT",
      `archive entry ${JSON.stringify(name)} (a ${entry.type}) names the destination itself; only a directory may`,
    );
  }
  for (let i = 1; i < parts.length; i++) {
    const prefix = parts.slice(0, i).join("/");
    if (links.has(prefix))
      return new PyroError("PATH_OUTSIDE_WORKSPACE", `archive entry ${name} goes through the symlink ${prefix}`);
  }
  if (entry.type === "SymbolicLink" || entry.type === "Link") {
    const target = entry.linkpath ?? "";
    const base = entry.type === "SymbolicLink" ? dirname(clean) : ".";
    const resolved = normalize(join(base, target));
    if (isAbsolute(target) || resolved === ".." || resolved.startsWith("../")) {
      return new PyroError(
        "PATH_OUTSIDE_WORKSPACE",
        `archive entry ${name} links to ${target}, outside the destination`,
      );
    }
    if (entry.type === "SymbolicLink") links.add(clean);
  }
  return undefined;
}

/** Renames under way at once in one directory: in a sandbox each is a round trip to the host's file
 * server, so several in flight overlap their waits. */
const RENAMES_AT_ONCE = 16;
/** What rename says when the destination is in its way: a directory, or a non-directory for a directory. */
const IN_THE_WAY = new Set(["EEXIST", "ENOTEMPTY", "EISDIR", "ENOTDIR"]);

/** Moves src's entries into dst: a file or link replaces whatever has its name, a directory merges
 * into a directory; a link in dst is replaced, never followed. One rename per entry where nothing
 * is in the way (the usual case), so a guest pays a syscall per entry, not three. */
async function merge(src: string, dst: string): Promise<void> {
  const entries = await readdir(src, { withFileTypes: true });
  let next = 0;
  const mover = async () => {
    while (next < entries.length) {
      const entry = entries[next++]!;
      const s = join(src, entry.name);
      const d = join(dst, entry.name);
      const moved = await rename(s, d).then(
        () => true,
        (err: NodeJS.ErrnoException) => {
          if (IN_THE_WAY.has(err.code ?? "")) return false;
          throw err;
        },
      );
      if (moved) continue;
      if (entry.isDirectory() && (await lstat(d)).isDirectory()) {
        await merge(s, d);
        continue;
      }
      await rm(d, { recursive: true, force: true });
      await rename(s, d);
    }
  };
  await Promise.all(Array.from({ length: Math.min(RENAMES_AT_ONCE, entries.length) }, mover));
}

/**
 * Moves a staged tree into `dest` (made if missing) on the same file system: files replace files, a
 * directory merges into a directory. `staged` is removed either way; a `dest` this call made is
 * removed again if the move fails.
 */
export async function mergeStaged(staged: string, dest: string): Promise<void> {
  let made: string | undefined;
  let merged = false;
  try {
    const existing = await lstat(dest).catch(() => undefined);
    if (existing && !existing.isDirectory())
      throw new PyroError("INVALID_ARGUMENT", `${dest} exists and is not a directory`);
    made = await mkdir(dest, { recursive: true });
    await merge(staged, dest);
    merged = true;
  } finally {
    await rm(staged, { recursive: true, force: true, maxRetries: 5 });
    if (made && !merged) await rm(made, { recursive: true, force: true, maxRetries: 5 });
  }
}

/**
 * Replaces `unpack`'s path reservations (which order the writes of entries that share a path):
 * node-tar 7.5's never forget an entry once it is written, and each keeps its ReadEntry, so 100,000
 * small files held 420 MB and a million exhausted the heap (tar 8 fixes it, but needs Node 22).
 * These start a write when no running or earlier waiting write touches the same path, a parent or
 * a child of it, up to WRITES_AT_ONCE at a time, and forget each as it ends.
 */
export function writeInTurn(unpack: tar.Unpack): tar.Unpack {
  type Write = { paths: string[]; write: (done: () => void) => void };
  const waiting: Write[] = [];
  const running = new Set<Write>();
  const clash = (a: string[], b: string[]) =>
    a.some((p) => b.some((q) => p === q || p.startsWith(`${q}/`) || q.startsWith(`${p}/`)));
  const pump = () => {
    const passed: Write[] = [];
    for (let i = 0; i < waiting.length && i < SCAN && running.size < WRITES_AT_ONCE; ) {
      const w = waiting[i]!;
      if ([...running, ...passed].some((o) => clash(w.paths, o.paths))) {
        passed.push(w);
        i += 1;
        continue;
      }
      waiting.splice(i, 1);
      running.add(w);
      w.write(() => {
        running.delete(w);
        // Not from inside the entry's own callback: a long run of synchronous ends stays flat.
        queueMicrotask(pump);
      });
    }
  };
  (unpack as unknown as { reservations: unknown }).reservations = {
    reserve(paths: string[], write: (done: () => void) => void): boolean {
      waiting.push({ paths: paths.map((p) => p.replace(/^(\.\/)+/, "").replace(/\/+$/, "")), write });
      pump();
      return true;
    },
  };
  return unpack;
}
const WRITES_AT_ONCE = 8;
/** How far past a blocked write the queue is searched for one that may start. */
const SCAN = 16;

/** Entries an extraction lets wait for the disk before it reads more of the archive. */
const MAX_UNWRITTEN = 256;

/**
 * Extracts a tar (or gzipped tar) stream into dest, which must already be confined. Entries go to a
 * staging directory first and are refused whole on any hostile entry, so a refused archive changes
 * nothing; a clean one is merged into place without following links already in dest. Used by the
 * agent inside the sandbox and by the host to seed a workspace whose sandbox has not started.
 */
export async function extractArchive(
  input: AsyncIterable<Uint8Array>,
  dest: string,
): Promise<{ entry_count: number; bytes_written: number }> {
  const existing = await lstat(dest).catch(() => undefined);
  if (existing && !existing.isDirectory())
    throw new PyroError("INVALID_ARGUMENT", `${dest} exists and is not a directory`);
  // The first directory this call made, if dest did not exist: removed again if nothing lands.
  const made = await mkdir(dest, { recursive: true });
  let merged = false;
  const staging = join(dest, `.pyro-import-${randomBytes(4).toString("hex")}`);
  await mkdir(staging);
  const links = new Set<string>();
  let problem: PyroError | undefined;
  let entryCount = 0;
  let bytesWritten = 0;
  // node-tar's Unpack reads on while its writes to disk queue up, holding every pending entry and
  // its data (100,000 small files: 420 MB). The read waits here while too many are unwritten.
  let unwritten = 0;
  let wake: (() => void) | undefined;
  const progressed = () => {
    const resume = wake;
    wake = undefined;
    resume?.();
  };
  try {
    const unpack = writeInTurn(
      new tar.Unpack({
        cwd: staging,
        strict: false,
        preservePaths: false,
        filter: (_path, entry) => {
          const e = entry as tar.ReadEntry;
          const why = entryProblem({ path: e.path, type: e.type, linkpath: e.linkpath }, links);
          if (why) {
            problem ??= why;
            return false;
          }
          // No setuid or setgid bits from an archive.
          if (e.mode !== undefined) e.mode &= 0o1777;
          entryCount++;
          if (e.type === "File" || e.type === "OldFile") bytesWritten += e.size ?? 0;
          unwritten += 1;
          e.once("end", () => {
            unwritten -= 1;
            progressed();
          });
          return true;
        },
      }),
    );
    const done = new Promise<void>((res, rej) => {
      unpack.on("close", () => res());
      unpack.on("error", rej);
    });
    // A corrupt or hostile archive fails mid-stream (a zlib error): that ends the read at once,
    // rather than leaving `done` rejected unobserved (which ended the whole process) and this loop
    // waiting for a drain that never comes.
    let failed = false;
    done.catch(() => {
      failed = true;
      progressed();
    });
    try {
      for await (const chunk of input) {
        while (unwritten > MAX_UNWRITTEN && !failed) await new Promise<void>((resume) => (wake = resume));
        if (failed) break;
        if (!unpack.write(Buffer.from(chunk))) await Promise.race([once(unpack, "drain"), done]);
      }
    } catch (err) {
      // The sender was cut off (killed, cancelled, timed out): what arrived is a partial tree and is
      // thrown away with the staging directory, once the writes already under way have settled.
      unpack.abort(err as Error);
      await done.catch(() => {});
      throw err;
    }
    unpack.end();
    await done;
    if (problem) throw problem;
    await merge(staging, dest);
    merged = true;
  } catch (err) {
    if (err instanceof PyroError) throw err;
    throw new PyroError(
      "INVALID_ARGUMENT",
      `the archive could not be read (${(err as Error).message}); nothing was written: give a complete .tar, .tar.gz or .tgz file`,
    );
  } finally {
    await rm(staging, { recursive: true, force: true, maxRetries: 5 });
    if (made && !merged) await rm(made, { recursive: true, force: true, maxRetries: 5 });
  }
  return { entry_count: entryCount, bytes_written: bytesWritten };
}
