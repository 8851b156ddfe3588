// Owns the shape of a tree manifest: how the guest agent and the host both describe every entry of a
// workspace's tree, so that diff, snapshots and reset compare like with like.
import { z } from "zod";

/** One entry of a tree manifest, the form the host diffs a workspace's tree in. */
export const TreeEntry = z.object({
  path: z.string().min(1).describe("Relative POSIX path under the tree's root; the root itself is not listed."),
  type: z.enum(["file", "directory", "symlink", "other"]),
  mode: z.number().int().nonnegative().describe("Permission bits (mode & 0o7777)."),
  size: z.number().int().nonnegative().describe("Bytes for files, target length for symlinks, 0 otherwise."),
  sha256: z.string().optional().describe("Lowercase hex digest of the content; files only."),
  link_target: z.string().optional().describe("What the link points at, unresolved; symlinks only."),
});
export type TreeEntry = z.infer<typeof TreeEntry>;
