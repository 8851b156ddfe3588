// Owns what is read of a workspace's whole tree: diff against the baseline taken at create, the
// summary's count of changes, and export of a path to the host.

import { constants } from "node:fs";
import { chmod, copyFile, lstat, mkdir, readlink, rename, rm, symlink, utimes } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import * as tar from "tar";
import { z } from "zod";
import { FileOp, TarOp } from "../channel/protocol.js";
import { PyroError } from "../contract/errors.js";
import type {
  ExportParams,
  ExportResult,
  WorkspaceDiffParams,
  WorkspaceDiffResult,
  WorkspaceRefParams,
  WorkspaceSummary,
} from "../contract/workspace.js";
import type { SupervisorClient } from "../supervisor/client.js";
import { writeInTurn } from "../util/archive.js";
import { CappedList } from "../util/capped-list.js";
import { CopySourceError, copyDirectory, specialKind } from "../util/copy-tree.js";
import { unwritableTarget } from "../util/host-access.js";
import { linkStaysInside } from "../util/links.js";
import { compareTreeOrder, type Walked } from "../util/tree-walk.js";
import {
  buildDiff,
  type Change,
  type Compared,
  compareTreeStreams,
  countChanges,
  type DiffIo,
  readHostFile,
  type Selection,
  selectChanges,
  TreeEntry,
  type Trees,
} from "./diff.js";
import { resolveInLayer } from "./disk.js";
import { ARCHIVE_DEADLINE_MS, GUEST_ROOT, guestPath } from "./guest.js";
import type { OpenWorkspace } from "./open-workspace.js";
import { baselineTree, layerTree } from "./tree-index.js";
import type { WorkspaceService } from "./workspaces.js";

export class TreeService {
  constructor(private readonly core: WorkspaceService) {}

  async diff(params: z.output<typeof WorkspaceDiffParams>): Promise<WorkspaceDiffResult> {
    const ws = await this.core.open(params.workspace);
    const filters = { includeIgnored: params.include_ignored, paths: params.paths, exclude: params.exclude };
    return ws.redactingAll(async () => {
      const result = await this.withTrees(ws, async (compared, trees) => {
        const { changes, ignored } = await selectChanges(compared, trees, filters);
        return { ...(await buildDiff(changes, trees)), ignored };
      });
      return { workspace_id: ws.id, ...result };
    });
  }

  /**
   * Calls `fn` with the changes between the baseline and the current tree, and readers of both:
   * diff and summary look at the same trees. Both manifests are streams, so only the changes are
   * held. Fast path: the frozen sandbox's layer, walked on the host beside its digest index (the
   * sandbox stays paused while `fn` runs); otherwise the manifest is fingerprinted in the guest and
   * files are fetched one by one.
   */
  private async withTrees<T>(ws: OpenWorkspace, fn: (changes: Change[], trees: Trees) => Promise<T>): Promise<T> {
    const client = await ws.client();
    const paths = ws.paths;
    const readBaseline: DiffIo["readBaseline"] = (path, maxBytes) =>
      readHostFile(join(paths.baselineTree, path), maxBytes);
    const withRules = (compared: Compared, readCurrent: DiffIo["readCurrent"]) =>
      fn(compared.changes, {
        baseline: compared.baselineRules,
        current: compared.currentRules,
        readBaseline,
        readCurrent,
      });
    const fromLayer = await this.core.sandboxes.withFrozen(ws.record, async (layer) =>
      withRules(await compareTreeStreams(baselineTree(paths), layerTree(layer, paths.layerIndex)), (path, maxBytes) =>
        readHostFile(join(layer, path), maxBytes),
      ),
    );
    if (fromLayer !== undefined) return fromLayer;
    const reply = await client.call(FileOp.TREE, { path: GUEST_ROOT }, { deadlineMs: ARCHIVE_DEADLINE_MS });
    const current = z
      .array(TreeEntry)
      .parse(reply.entries)
      .sort((a, b) => compareTreeOrder(a.path, b.path));
    return withRules(await compareTreeStreams(baselineTree(paths), current), (path, maxBytes) =>
      this.readGuestBytes(client, join(GUEST_ROOT, path), maxBytes),
    );
  }

  async export(params: z.output<typeof ExportParams>): Promise<ExportResult> {
    const ws = await this.core.open(params.workspace);
    const output = resolve(params.output_path);
    if (await lstat(output).catch(() => undefined)) {
      throw new PyroError(
        "OUTPUT_EXISTS",
        `${params.output_path} already exists; choose an output path that does not exist yet`,
      );
    }
    const staging = join(dirname(output), `.pyro-export-${basename(output)}-${process.pid}`);
    await mkdir(staging, { recursive: true }).catch((err) => {
      throw unwritableTarget("output_path", params.output_path, err);
    });
    try {
      const client = await ws.client();
      const exported = guestPath(params.path);
      let entryCount = 0;
      let bytes = 0;
      let skipped = new CappedList();
      let modesCleared = new CappedList();
      // Fast path: the frozen sandbox's layer, copied on the host (a file costs a copy, not a trip
      // through the guest's tar and the channel: 20,000 small files took 71 s that way).
      const copied = await this.core.sandboxes.withFrozen(ws.record, (layer) =>
        copyFromLayer(layer, exported, staging, skipped, modesCleared),
      );
      if (copied) {
        const produced = copied.artifact_type === "directory" ? staging : join(staging, basename(exported));
        await rename(produced, output);
        return await this.recordExport(ws, exported, output, {
          artifact_type: copied.artifact_type,
          entry_count: copied.entry_count,
          bytes_written: copied.bytes_written,
          skipped: skipped.list(),
          modes_cleared: modesCleared.list(),
        });
      }
      if (copied === null) {
        // Some file of the layer is not readable by this user (rootless, a guest's mode 000 file):
        // the guest, as its root, packs what it sees.
        await rm(staging, { recursive: true, force: true });
        await mkdir(staging);
        skipped = new CappedList();
        modesCleared = new CappedList();
      }
      // node-tar refuses absolute paths, `..` and writing through symlinks: nothing lands outside
      // staging. The files are the caller's (no guest uid or gid carried over, as root would by
      // default), and no guest file keeps a setuid, setgid or sticky bit on the host.
      const extractor = writeInTurn(
        tar.extract({
          cwd: staging,
          strict: true,
          preservePaths: false,
          preserveOwner: false,
          onReadEntry: (entry) => {
            entryCount++;
            bytes += entry.size ?? 0;
          },
          // Regular files, directories, and symlinks that stay inside the export: a link to /etc or
          // ../.. in the workspace must not become a host link pointing out of the output.
          filter: (entryPath, entry) => {
            const e = entry as tar.ReadEntry;
            const path = entryPath.replace(/^(\.\/)+/, "");
            if (e.type === "SymbolicLink") {
              const inside = linkStaysInside(staging, entryPath, e.linkpath ?? "");
              if (!inside) skipped.add(`${path} (symlink to ${e.linkpath} points outside the copy)`);
              return inside;
            }
            // A hard link to another file of the export is that file again (its mode already cleared).
            if (e.type === "Link") {
              const target = resolve(staging, e.linkpath ?? "");
              if (target.startsWith(`${staging}/`)) return true;
              skipped.add(`${path} (hard link to ${e.linkpath}, outside the copy)`);
              return false;
            }
            if (e.type !== "File" && e.type !== "Directory" && e.type !== "OldFile") {
              skipped.add(`${path} (${ENTRY_KINDS[e.type] ?? e.type})`);
              return false;
            }
            if (e.mode !== undefined && (e.mode & 0o7000) !== 0) {
              if (e.type !== "Directory") modesCleared.add(path);
              e.mode &= 0o777;
            }
            return true;
          },
        } as tar.TarOptionsWithAliasesAsyncNoFile) as tar.Unpack,
      );
      const done = new Promise<void>((res, rej) => {
        extractor.on("finish", () => res());
        extractor.on("error", rej);
      });
      done.catch(() => {});
      let result: { artifact_type: "file" | "directory"; skipped?: string[]; skipped_more?: number };
      try {
        result = await client.call(
          TarOp.EXPORT,
          { path: exported },
          { deadlineMs: ARCHIVE_DEADLINE_MS, onData: (_s, chunk) => extractor.write(chunk) },
        );
      } catch (err) {
        // The guest's failure is the answer; what was already written is dropped with staging,
        // once the extractor has stopped writing into it.
        extractor.abort(err as Error);
        await done.catch(() => {});
        throw err;
      }
      skipped.addAll(result.skipped ?? [], result.skipped_more);
      extractor.end();
      await done;
      const produced = result.artifact_type === "directory" ? staging : join(staging, basename(exported));
      await rename(produced, output);
      return await this.recordExport(ws, exported, output, {
        artifact_type: result.artifact_type,
        entry_count: result.artifact_type === "directory" ? Math.max(0, entryCount - 1) : entryCount,
        bytes_written: bytes,
        skipped: skipped.list(),
        modes_cleared: modesCleared.list(),
      });
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /** An export that landed: kept in the workspace's record, and said with secrets redacted. */
  private async recordExport(
    ws: OpenWorkspace,
    exported: string,
    output: string,
    made: Omit<ExportResult, "workspace_id" | "workspace_path" | "output_path">,
  ): Promise<ExportResult> {
    await this.core.records.mutate(ws.id, (r) => ({
      ...r,
      exports: [...r.exports, { workspace_path: exported, output_path: output, at: new Date().toISOString() }],
    }));
    return (await ws.redactor()).redactDeep({
      workspace_id: ws.id,
      workspace_path: exported,
      output_path: output,
      ...made,
    });
  }

  /** Whole file bytes from the guest (binary-safe), through a one-entry tar export. */
  /** A guest file's bytes; with maxBytes, only about that many are kept (the rest still streams by). */
  private async readGuestBytes(client: SupervisorClient, path: string, maxBytes = Infinity): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let kept = 0;
    const parser = new tar.Parser({
      onReadEntry: (entry) => {
        entry.on("data", (c: Buffer) => {
          if (kept >= maxBytes) return;
          chunks.push(c);
          kept += c.length;
        });
      },
    });
    const done = new Promise<void>((res) => parser.on("end", () => res()));
    await client.call(TarOp.EXPORT, { path }, { deadlineMs: ARCHIVE_DEADLINE_MS, onData: (_s, c) => parser.write(c) });
    parser.end();
    await done;
    return Buffer.concat(chunks);
  }

  async summary({ workspace }: z.output<typeof WorkspaceRefParams>): Promise<WorkspaceSummary> {
    const ws = await this.core.open(workspace);
    const commands = await this.core.records.commands(ws.id);
    const info = await this.core.info(ws.record);
    // The same selection as a default diff, without reading any file but the ignore rules.
    let selection: Selection | undefined;
    if (info.state === "running") {
      selection = await this.withTrees(ws, (changes, trees) => selectChanges(changes, trees));
    }
    const counts = countChanges(selection?.changes ?? []);
    return (await ws.redactor()).redactDeep({
      workspace_id: ws.id,
      name: ws.record.name,
      state: info.state,
      commands: {
        total: commands.length,
        failed: commands.filter((c) => c.exit_code !== 0).length,
        last: commands.slice(-5),
      },
      changes: {
        changed: counts.total > 0,
        ...counts,
        files: selection?.changes.map((c) => ({ path: c.path, status: c.status })) ?? [],
        // Unknown, so absent, while the workspace is not running.
        ignored: selection?.ignored,
      },
      exports: ws.record.exports,
      reset_count: ws.record.reset_count,
    });
  }
}

/** What a tar entry that export leaves out is, in words. */
const ENTRY_KINDS: Record<string, string> = {
  CharacterDevice: "character device",
  BlockDevice: "block device",
  FIFO: "FIFO",
  Socket: "socket",
};

/**
 * Copies a guest path out of the frozen layer into `staging` by export's rules (null when this user
 * cannot read some of it): the path is
 * resolved as the guest would resolve it but never out of /workspace; files, directories and links
 * that stay inside the copy are copied, with no setuid, setgid or sticky bit and owned by the
 * caller; special files and escaping links are left out and named.
 */
async function copyFromLayer(
  layer: string,
  exported: string,
  staging: string,
  skipped: CappedList,
  modesCleared: CappedList,
): Promise<{ artifact_type: "file" | "directory"; entry_count: number; bytes_written: number } | null> {
  try {
    return await copyLayerPath(layer, exported, staging, skipped, modesCleared);
  } catch (err) {
    if (err instanceof CopySourceError || (err as NodeJS.ErrnoException).code === "EACCES") return null;
    throw err;
  }
}

async function copyLayerPath(
  layer: string,
  exported: string,
  staging: string,
  skipped: CappedList,
  modesCleared: CappedList,
): Promise<{ artifact_type: "file" | "directory"; entry_count: number; bytes_written: number }> {
  const { hostPath } = await resolveInLayer(layer, exported, { followFinal: false });
  const top = await lstat(hostPath);
  const full = (code: string) =>
    new PyroError("INVALID_ARGUMENT", `the host has no room for the export (${code}); free space, or export less`);
  const keep = ({ entry, stat }: Walked, root: string) => {
    if (entry.type === "other") {
      skipped.add(`${entry.path} (${specialKind(stat)})`);
      return false;
    }
    if (entry.type === "symlink" && !linkStaysInside(root, entry.path, entry.link_target ?? "")) {
      skipped.add(`${entry.path} (symlink to ${entry.link_target} points outside the copy)`);
      return false;
    }
    if (entry.type !== "directory" && (entry.mode & 0o7000) !== 0) modesCleared.add(entry.path);
    return true;
  };
  if (top.isDirectory()) {
    const copied = await copyDirectory(hostPath, staging, {
      keep: (walked) => keep(walked, staging),
      modeMask: 0o777,
      full,
    });
    return { artifact_type: "directory", entry_count: copied.entry_count - 1, bytes_written: copied.bytes_written };
  }
  if (!top.isFile() && !top.isSymbolicLink()) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `${exported} is a ${specialKind(top)}; export copies files, directories and symlinks`,
    );
  }
  // One file or link, named as in the guest.
  const name = basename(exported);
  const target = join(staging, name);
  if (top.isSymbolicLink()) {
    const to = await readlink(hostPath);
    if (!linkStaysInside(staging, name, to)) {
      throw new PyroError(
        "INVALID_ARGUMENT",
        `${exported} is a symlink to ${to}, which points outside the copy; export what it points to instead`,
      );
    }
    await symlink(to, target);
    return { artifact_type: "file", entry_count: 1, bytes_written: 0 };
  }
  await copyFile(hostPath, target, constants.COPYFILE_EXCL);
  await chmod(target, top.mode & 0o777);
  if ((top.mode & 0o7000) !== 0) modesCleared.add(name);
  await utimes(target, top.atime, top.mtime);
  return { artifact_type: "file", entry_count: 1, bytes_written: top.size };
}
