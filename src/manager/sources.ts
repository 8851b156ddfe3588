// Owns what a seed or a sync push reads from the host: the source classified (a directory, or a
// .tar, .tar.gz or .tgz archive), and copied or extracted without ever reaching outside it, into a
// layer on the host (a seed before the sandbox starts) or into a paused sandbox's /workspace, for
// its agent to move into place (sync push).

import { randomBytes } from "node:crypto";
import { constants, createReadStream, readlinkSync } from "node:fs";
import { access, mkdir, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { FileOp, TarOp } from "../channel/protocol.js";
import { PyroError } from "../contract/errors.js";
import type { TreeEntry } from "../contract/tree.js";
import type { SyncPushResult } from "../contract/workspace.js";
import type { SupervisorClient } from "../supervisor/client.js";
import { extractArchive } from "../util/archive.js";
import { type CopiedTree, CopySourceError, copyDirectory } from "../util/copy-tree.js";
import { faultPoint } from "../util/fault.js";
import { unreadableSource } from "../util/host-access.js";
import { linkStaysInside } from "../util/links.js";
import { packFiles } from "../util/pack.js";
import { ARCHIVE_DEADLINE_MS } from "./guest.js";

export type SeedSource = { kind: "directory" | "tar_archive"; path: string };

export async function classifySource(path: string, what: string): Promise<SeedSource> {
  const abs = resolve(path);
  const info = await stat(abs).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "EACCES") throw unreadableSource(what, path, err);
    return undefined;
  });
  if (!info) throw new PyroError("FILE_NOT_FOUND", `${what} ${path} does not exist on the host`);
  const kind = info.isDirectory()
    ? "directory"
    : info.isFile() && /\.(tar|tar\.gz|tgz)$/.test(abs)
      ? "tar_archive"
      : undefined;
  if (!kind) {
    throw new PyroError("INVALID_ARGUMENT", `${what} ${path} must be a directory or a .tar, .tar.gz or .tgz archive`);
  }
  // pyro reads a seed with the rights of the user who runs it (rootless or not, the kernel checks).
  await access(abs, kind === "directory" ? constants.R_OK | constants.X_OK : constants.R_OK).catch((err) => {
    throw unreadableSource(what, path, err as NodeJS.ErrnoException);
  });
  return { kind, path: abs };
}

/** The source as one tar stream; `skipped` collects what a directory's pack leaves out. */
export function sourceStream(source: SeedSource, skipped: string[], what: string): AsyncIterable<Uint8Array> {
  return (
    source.kind === "directory" ? packedSource(source.path, skipped, what) : createReadStream(source.path)
  ) as AsyncIterable<Uint8Array>;
}

/** Runs fn with the sandbox frozen and the host directory of its /workspace, in which fn makes
 * `name`; undefined when the engine cannot expose it (sandboxes.withFrozenWritable). */
export type FrozenWritable = <T>(name: string, fn: (dir: string) => Promise<T>) => Promise<T | undefined>;

/**
 * Sync push. The source is copied (a directory) or extracted (an archive) by the rules of a seed, at
 * host speed, into a new `.pyro-push-*` directory at the top of the frozen sandbox's /workspace;
 * the agent then moves it into `dest`. All or nothing: a failure before the move removes the staged
 * tree (a killed process's, the next thaw). Where the engine cannot expose /workspace, the agent
 * extracts the packed stream itself, into a staging directory of its own.
 */
export async function pushSource(
  client: SupervisorClient,
  source: SeedSource,
  dest: string,
  frozen: FrozenWritable,
): Promise<Omit<SyncPushResult, "workspace_id" | "source_path" | "dest">> {
  const skipped: string[] = [];
  const name = `.pyro-push-${randomBytes(8).toString("hex")}`;
  const staged = await frozen(name, async (workspace) => {
    const dir = join(workspace, name);
    await mkdir(dir, { mode: 0o755 });
    try {
      const copied =
        source.kind === "directory"
          ? await copySeed(source, dir, skipped, "source_path")
          : await extractArchive(sourceStream(source, skipped, "source_path"), dir);
      faultPoint("push:staged");
      return copied;
    } catch (err) {
      await rm(dir, { recursive: true, force: true, maxRetries: 5 }); // still frozen
      throw err;
    }
  });
  if (!staged) {
    const result = await client.call(
      TarOp.IMPORT,
      { dest },
      { deadlineMs: ARCHIVE_DEADLINE_MS, input: sourceStream(source, skipped, "source_path") },
    );
    return { entry_count: result.entry_count, bytes_written: result.bytes_written, skipped };
  }
  try {
    await client.call(FileOp.MERGE, { staged: name, dest }, { deadlineMs: ARCHIVE_DEADLINE_MS });
  } catch (err) {
    // The agent removes what it was given; this is for a call that never reached it.
    await frozen(name, (workspace) => rm(join(workspace, name), { recursive: true, force: true })).catch(() => {});
    throw err;
  }
  return { entry_count: staged.entry_count, bytes_written: staged.bytes_written, skipped };
}

/** The pack stream as a Node stream whose read fails (instead of an unhandled 'error' event
 * ending the process) when a directory inside cannot be read. */
function packedSource(dir: string, skipped: string[], what: string): PassThrough {
  const out = new PassThrough();
  // The reader may not have started yet; it finds the error when it does (stream.errored).
  out.on("error", () => {});
  const packed = packDirectory(dir, skipped);
  packed.on("error", (err: NodeJS.ErrnoException) => out.destroy(unreadableSource(what, dir, err)));
  packed.pipe(out);
  return out;
}

/**
 * A tar stream of a host directory that never reaches outside it: symlinks are archived as links
 * (never followed), links pointing outside the directory and special files are left out.
 */
function packDirectory(dir: string, skipped: string[]): Readable {
  const kept = keptFromSeed(dir, skipped);
  return packFiles(
    {
      cwd: dir,
      portable: true,
      follow: false,
      filter: (entryPath, entry) => {
        const st = entry as { isSymbolicLink?: () => boolean; isFile?: () => boolean; isDirectory?: () => boolean };
        const type = st.isSymbolicLink?.()
          ? "symlink"
          : st.isFile?.()
            ? "file"
            : st.isDirectory?.()
              ? "directory"
              : "other";
        return kept(entryPath.replace(/^\.\//, ""), type);
      },
    },
    ["."],
  ) as unknown as Readable;
}

/**
 * A seed directory copied straight into a layer on the host (a workspace whose sandbox has not
 * started), by the same rules as the packed stream and with the same result, at the speed of `cp`.
 */
export async function copySeed(
  source: SeedSource,
  dest: string,
  skipped: string[],
  what: "seed_path" | "source_path",
): Promise<CopiedTree> {
  const kept = keptFromSeed(source.path, skipped);
  try {
    return await copyDirectory(source.path, dest, {
      keep: ({ entry }) => kept(entry.path, entry.type),
      full: (code) =>
        new PyroError(
          "INVALID_ARGUMENT",
          what === "seed_path"
            ? `the seed does not fit the workspace's disk (${code}): create the workspace with a larger disk_mib, or seed less`
            : `the push does not fit the workspace's disk (${code}); nothing was written: free space in the workspace, or push less`,
        ),
    });
  } catch (err) {
    if (err instanceof CopySourceError) throw unreadableSource(what, source.path, err.cause);
    throw err;
  }
}

/** What of a host directory goes into a workspace: files, directories and symlinks that stay
 * inside it. What is left out is named in `skipped`. */
function keptFromSeed(dir: string, skipped: string[]): (path: string, type: TreeEntry["type"]) => boolean {
  return (path, type) => {
    if (type === "symlink") {
      let target: string;
      try {
        target = readlinkSync(join(dir, path));
      } catch {
        skipped.push(path);
        return false;
      }
      if (!linkStaysInside(dir, path, target)) {
        skipped.push(`${path} -> ${target}`);
        return false;
      }
      return true;
    }
    if (type === "file" || type === "directory") return true;
    skipped.push(path);
    return false;
  };
}
