// Owns how a file-tree entry is described to callers, wherever the tree is read: by the guest agent
// inside the sandbox (file list) or by the host on a stopped workspace's layer (disk list).
import { lstat, readlink } from "node:fs/promises";

export type ArtifactType = "file" | "directory" | "symlink";

export interface TreeEntryInfo {
  /** The path as the caller knows it (a guest path), not necessarily where it was read. */
  path: string;
  artifact_type: ArtifactType;
  size_bytes: number;
  mode: number;
  link_target?: string;
}

/** The entry at `readPath`, reported as `shownPath`; undefined for sockets, FIFOs and devices.
 * Symlinks are described, never followed. */
export async function describeEntry(readPath: string, shownPath = readPath): Promise<TreeEntryInfo | undefined> {
  const info = await lstat(readPath);
  const type: ArtifactType | undefined = info.isSymbolicLink()
    ? "symlink"
    : info.isDirectory()
      ? "directory"
      : info.isFile()
        ? "file"
        : undefined;
  if (!type) return undefined;
  return {
    path: shownPath,
    artifact_type: type,
    size_bytes: type === "file" ? info.size : 0,
    mode: info.mode & 0o7777,
    ...(type === "symlink" ? { link_target: await readlink(readPath) } : {}),
  };
}
