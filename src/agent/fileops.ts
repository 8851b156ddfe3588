// Owns the agent's file operations on /workspace: list, read (bounded UTF-8 text), atomic write,
// delete, mkdir, and the tree manifest the host diffs against its baseline. Every path goes
// through confine() first; symlinks are reported, never followed out of the workspace.

import { randomBytes } from "node:crypto";
import { chmod, lstat, mkdir, open, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { AgentHandlers } from "../channel/agent-ops.js";
import { DATA_CHUNK_BYTES, Stream } from "../channel/frame.js";
import { FileOp } from "../channel/protocol.js";
import { PyroError } from "../contract/errors.js";
import { mergeStaged } from "../util/archive.js";
import { describeEntry, type TreeEntryInfo } from "../util/entries.js";
import { decodeText, manifestOfDir } from "../util/tree.js";
import { confine } from "./confine.js";

function notFound(path: string): PyroError {
  return new PyroError("FILE_NOT_FOUND", `${path} does not exist in the workspace`);
}

/** A cut multi-byte character at the end of a bounded read is not binary: back off to a whole one. */
/** The most a streamed file write takes: 16 Mi characters of UTF-8 at 4 bytes each. */
export const MAX_WRITE_BYTES = 64 * 1024 * 1024;

async function readInput(input: AsyncIterable<Buffer>, path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of input) {
    total += chunk.length;
    if (total > MAX_WRITE_BYTES) {
      throw new PyroError("INVALID_ARGUMENT", `the content for ${path} is over ${MAX_WRITE_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function textOf(bytes: Buffer, cut: boolean, path: string): string {
  const text = decodeText(bytes, cut);
  if (text !== undefined) return text;
  throw new PyroError("INVALID_ARGUMENT", `${path} is a binary file; file read returns text only: export it instead`);
}

export function fileHandlers(root = "/workspace"): AgentHandlers {
  return {
    [FileOp.LIST]: async (p) => {
      const { abs } = await confine(root, p.path ?? root);
      const top = await describeEntry(abs).catch(() => undefined);
      if (!top) throw notFound(p.path ?? root);
      const entries: TreeEntryInfo[] = [];
      let truncated = false;
      const walk = async (dir: string): Promise<void> => {
        const names = (await readdir(dir)).sort();
        for (const name of names) {
          if (entries.length >= p.max_entries) {
            truncated = true;
            return;
          }
          const entry = await describeEntry(join(dir, name)).catch(() => undefined);
          if (!entry) continue;
          entries.push(entry);
          if (p.recursive && entry.artifact_type === "directory") await walk(entry.path);
        }
      };
      if (top.artifact_type === "directory") await walk(abs);
      else entries.push(top);
      return { path: abs, recursive: p.recursive, entries, truncated };
    },

    // The text goes back as data chunks, not inside the reply: a reply is one frame (at most 1 MiB).
    [FileOp.READ]: async (p, ctx) => {
      const { abs } = await confine(root, p.path);
      const info = await stat(abs).catch(() => undefined);
      if (!info) throw notFound(p.path);
      if (!info.isFile())
        throw new PyroError("INVALID_ARGUMENT", `${p.path} is not a regular file; list directories with file list`);
      const handle = await open(abs, "r");
      try {
        const want = Math.min(info.size, p.max_bytes);
        const buf = Buffer.alloc(want);
        const { bytesRead } = await handle.read(buf, 0, want, 0);
        const truncated = info.size > p.max_bytes;
        const text = Buffer.from(textOf(buf.subarray(0, bytesRead), truncated, p.path), "utf8");
        for (let at = 0; at < text.length; at += DATA_CHUNK_BYTES) {
          await ctx.send(Stream.STDOUT, text.subarray(at, at + DATA_CHUNK_BYTES));
        }
        return { path: abs, size_bytes: info.size, truncated };
      } finally {
        await handle.close();
      }
    },

    [FileOp.WRITE]: async (p, ctx) => {
      const { abs, rel } = await confine(root, p.path);
      if (!rel) throw new PyroError("INVALID_ARGUMENT", "cannot write over /workspace itself; name a file inside it");
      const existing = await lstat(abs).catch(() => undefined);
      if (existing?.isDirectory()) throw new PyroError("INVALID_ARGUMENT", `${p.path} is a directory; name a file`);
      await mkdir(dirname(abs), { recursive: true });
      // Temp file + rename: a crash never leaves half a file, and a symlink in the way is replaced,
      // never written through.
      const tmp = join(dirname(abs), `.${basename(abs)}.pyro-${randomBytes(4).toString("hex")}`);
      // The content is the request's input stream (any size up to MAX_WRITE_BYTES).
      const bytes = await readInput(ctx.input, p.path);
      try {
        await writeFile(tmp, bytes, { flag: "wx" });
        await chmod(tmp, p.mode ?? (existing?.isFile() ? existing.mode & 0o7777 : 0o644));
        await rename(tmp, abs);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
      return { path: abs, bytes_written: bytes.length };
    },

    [FileOp.DELETE]: async (p) => {
      const { abs, rel } = await confine(root, p.path);
      if (!rel) throw new PyroError("INVALID_ARGUMENT", "cannot delete /workspace itself");
      const info = await lstat(abs).catch(() => undefined);
      if (!info) return { path: abs, deleted: false };
      if (info.isDirectory() && !p.recursive) {
        throw new PyroError(
          "INVALID_ARGUMENT",
          `${p.path} is a directory; pass recursive to delete it with its contents`,
        );
      }
      await rm(abs, { recursive: p.recursive, force: true });
      return { path: abs, deleted: true };
    },

    [FileOp.MKDIR]: async (p) => {
      const { abs } = await confine(root, p.path ?? root);
      await mkdir(abs, { recursive: true });
      return { path: abs };
    },

    [FileOp.TREE]: async (p) => {
      const { abs } = await confine(root, p.path ?? root);
      return { entries: await manifestOfDir(abs) };
    },

    [FileOp.MERGE]: async (p) => {
      const staged = await confine(root, p.staged);
      const { abs } = await confine(root, p.dest ?? root).catch(async (err) => {
        await rm(staged.abs, { recursive: true, force: true });
        throw err;
      });
      await mergeStaged(staged.abs, abs);
      return { path: abs };
    },
  };
}
