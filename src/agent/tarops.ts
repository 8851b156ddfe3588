// Owns tar streams in and out of /workspace. Export archives a confined path without following
// symlinks; import extracts through util/archive.ts, which refuses a hostile archive whole.
import type { Stats } from "node:fs";
import { lstat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { AgentHandlers } from "../channel/agent-ops.js";
import { Stream } from "../channel/frame.js";
import { TarOp } from "../channel/protocol.js";
import { PyroError } from "../contract/errors.js";
import { extractArchive } from "../util/archive.js";
import { CappedList } from "../util/capped-list.js";
import { specialKind } from "../util/copy-tree.js";
import { packFiles } from "../util/pack.js";
import { confine } from "./confine.js";

export function tarHandlers(root = "/workspace"): AgentHandlers {
  return {
    [TarOp.EXPORT]: async ({ path }, ctx) => {
      const { abs } = await confine(root, path);
      const info = await lstat(abs).catch(() => undefined);
      if (!info) throw new PyroError("INVALID_ARGUMENT", `${path} does not exist in the workspace`);
      const directory = info.isDirectory();
      if (!directory && !info.isFile() && !info.isSymbolicLink()) {
        throw new PyroError(
          "INVALID_ARGUMENT",
          `${path} is a ${specialKind(info)}; export copies files, directories and symlinks`,
        );
      }
      let entries = 0;
      let bytes = 0;
      // Device files, FIFOs and sockets are left out here, by name: the host would not write them,
      // and node-tar's pack stalls on a FIFO in a directory that also holds hard links.
      const skipped = new CappedList();
      const pack = packFiles(
        {
          cwd: directory ? abs : dirname(abs),
          portable: true,
          follow: false,
          onWriteEntry: () => entries++,
          // Packing from the file system, the second argument is the entry's lstat.
          filter: (entry, found) => {
            const stat = found as Stats;
            if (stat.isFile() || stat.isDirectory() || stat.isSymbolicLink()) return true;
            skipped.add(`${entry.replace(/^(\.\/)+/, "")} (${specialKind(stat)})`);
            return false;
          },
        },
        [directory ? "." : basename(abs)],
      );
      // Pack may report more than one failure (one per unreadable entry): every one is heard here,
      // the first is the answer. An 'error' nobody listens to would end the agent, and the sandbox.
      let failure: unknown;
      pack.on("error", (err) => {
        failure ??= err;
      });
      for await (const chunk of pack as AsyncIterable<Buffer>) {
        if (ctx.signal.aborted) throw new PyroError("CANCELLED", "export cancelled");
        bytes += chunk.length;
        await ctx.send(Stream.STDOUT, chunk);
      }
      if (failure) throw failure;
      return {
        artifact_type: directory ? "directory" : "file",
        entry_count: entries,
        bytes,
        skipped: skipped.kept(),
        skipped_more: skipped.overflow(),
      };
    },

    [TarOp.IMPORT]: async (p, ctx) => {
      const { abs } = await confine(root, p.dest ?? root);
      return extractArchive(ctx.input, abs);
    },
  };
}
