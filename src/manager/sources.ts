// Owns what a seed or a sync push reads from the host: the source classified (a directory, or a
// .tar, .tar.gz or .tgz archive), and streamed as tar without ever reaching outside it, into a
// layer on the host (a seed before the sandbox starts) or into the running guest (sync push).
import { constants, createReadStream, readlinkSync } from "node:fs";
import { access, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { TarOp } from "../channel/protocol.js";
import { PyroError } from "../contract/errors.js";
import type { TreeEntry } from "../contract/tree.js";
import type { SyncPushResult } from "../contract/workspace.js";
import type { SupervisorClient } from "../supervisor/client.js";
import { CopySourceError, copyDirectory } from "../util/copy-tree.js";
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

/** Sync push: the source extracted into the running guest at `dest`, by the agent. */
export async function pushSource(
  client: SupervisorClient,
  source: SeedSource,
  dest: string,
): Promise<Omit<SyncPushResult, "workspace_id" | "source_path" | "dest">> {
  const skipped: string[] = [];
  const result = await client.call(
    TarOp.IMPORT,
    { dest },
    { deadlineMs: ARCHIVE_DEADLINE_MS, input: sourceStream(source, skipped, "source_path") },
  );
  return { entry_count: result.entry_count, bytes_written: result.bytes_written, skipped };
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
  what: string,
): Promise<{ entry_count: number }> {
  const kept = keptFromSeed(source.path, skipped);
  try {
    return await copyDirectory(source.path, dest, {
      keep: ({ entry }) => kept(entry.path, entry.type),
      full: (code) =>
        new PyroError(
          "INVALID_ARGUMENT",
          `the seed does not fit the workspace's disk (${code}): create the workspace with a larger disk_mib, or seed less`,
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
