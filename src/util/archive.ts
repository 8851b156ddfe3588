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

/** Moves staged entries into dest: directories merge, anything else replaces; never follows a link in dest. */
async function merge(src: string, dst: string): Promise<void> {
  for (const name of await readdir(src)) {
    const s = join(src, name);
    const d = join(dst, name);
    const [si, di] = await Promise.all([lstat(s), lstat(d).catch(() => undefined)]);
    if (si.isDirectory() && di?.isDirectory()) {
      await merge(s, d);
      continue;
    }
    if (di && (di.isDirectory() || si.isDirectory())) await rm(d, { recursive: true, force: true });
    await rename(s, d);
  }
}

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
  try {
    const unpack = new tar.Unpack({
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
        return true;
      },
    });
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
    });
    try {
      for await (const chunk of input) {
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
