// Owns a workspace's files while it runs: list, read and write through the guest agent (which
// confines every path), patches applied all or nothing, and sync push of a host directory or archive.

import { join } from "node:path";
import type { z } from "zod";
import { FileOp } from "../channel/protocol.js";
import { PyroError } from "../contract/errors.js";
import type {
  FileListParams,
  FileListResult,
  FileReadParams,
  FileReadResult,
  FileWriteParams,
  FileWriteResult,
  PatchApplyParams,
  PatchApplyResult,
  SyncPushParams,
  SyncPushResult,
} from "../contract/workspace.js";
import type { SupervisorClient } from "../supervisor/client.js";
import { FILE_OP_DEADLINE_MS, GUEST_ROOT, guestPath } from "./guest.js";
import { planPatch } from "./patch.js";
import { classifySource, pushSource } from "./sources.js";
import type { WorkspaceService } from "./workspaces.js";

export class FileService {
  constructor(private readonly core: WorkspaceService) {}

  async syncPush(params: z.output<typeof SyncPushParams>): Promise<SyncPushResult> {
    const ws = await this.core.open(params.workspace);
    const source = await classifySource(params.source_path, "source_path");
    const pushed = await pushSource(await ws.client(), source, params.dest, (name, fn) =>
      this.core.sandboxes.withFrozenWritable(ws.record, name, fn),
    );
    await ws.touch();
    return { workspace_id: ws.id, source_path: source.path, dest: params.dest, ...pushed };
  }

  async listFiles(params: z.output<typeof FileListParams>): Promise<FileListResult> {
    const ws = await this.core.open(params.workspace);
    return ws.redactingAll(async () => {
      const result = await (await ws.client()).call(
        FileOp.LIST,
        { path: guestPath(params.path), recursive: params.recursive },
        { deadlineMs: FILE_OP_DEADLINE_MS },
      );
      return { workspace_id: ws.id, ...result };
    });
  }

  /** A read: it never bumps last_activity_at. */
  async readFile(params: z.output<typeof FileReadParams>): Promise<FileReadResult> {
    const ws = await this.core.open(params.workspace);
    return ws.redactingAll(async () => {
      const result = await readGuestText(await ws.client(), guestPath(params.path), params.max_bytes);
      return { workspace_id: ws.id, ...result };
    });
  }

  async writeFile(params: z.output<typeof FileWriteParams>): Promise<FileWriteResult> {
    const ws = await this.core.open(params.workspace);
    const result = await writeGuestText(await ws.client(), guestPath(params.path), params.text);
    await ws.touch();
    return { workspace_id: ws.id, ...result };
  }

  /** Every hunk of every file is checked against the current files before anything is written. */
  async applyPatch(params: z.output<typeof PatchApplyParams>): Promise<PatchApplyResult> {
    const ws = await this.core.open(params.workspace);
    const client = await ws.client();
    const plan = await planPatch(params.patch, {
      read: async (path) => {
        try {
          const r = await readGuestText(client, join(GUEST_ROOT, path), 5 * 1024 * 1024);
          if (r.truncated) {
            throw new PyroError(
              "INVALID_ARGUMENT",
              `${path} is larger than 5 MiB; patch it with workspace_exec instead`,
            );
          }
          const entry = await client.call(
            FileOp.LIST,
            { path: join(GUEST_ROOT, path) },
            { deadlineMs: FILE_OP_DEADLINE_MS },
          );
          return { content: r.content, mode: entry.entries[0]?.mode ?? 0o644 };
        } catch (err) {
          if (err instanceof PyroError && err.code === "FILE_NOT_FOUND") return null;
          throw err;
        }
      },
    });
    for (const file of plan.files) {
      const target = join(GUEST_ROOT, file.path);
      if (file.status === "deleted")
        await client.call(FileOp.DELETE, { path: target }, { deadlineMs: FILE_OP_DEADLINE_MS });
      else await writeGuestText(client, target, file.content ?? "", file.mode);
    }
    await ws.touch();
    return (await ws.redactor()).redactDeep({
      workspace_id: ws.id,
      changed: plan.files.length > 0,
      files: plan.files.map((f) => ({ path: f.path, status: f.status })),
    });
  }
}

/** A guest text file: the agent streams its bytes (a reply frame holds at most 1 MiB). */
async function readGuestText(
  client: SupervisorClient,
  path: string,
  maxBytes: number,
): Promise<{ path: string; content: string; size_bytes: number; truncated: boolean }> {
  const chunks: Buffer[] = [];
  const reply = await client.call(
    FileOp.READ,
    { path, max_bytes: maxBytes },
    { deadlineMs: FILE_OP_DEADLINE_MS, onData: (_stream, chunk) => chunks.push(chunk) },
  );
  return { ...reply, content: Buffer.concat(chunks).toString("utf8") };
}

/** Writes a guest text file whole (temp file and rename in the agent), its bytes streamed. */
async function writeGuestText(
  client: SupervisorClient,
  path: string,
  text: string,
  mode?: number,
): Promise<{ path: string; bytes_written: number }> {
  return await client.call(
    FileOp.WRITE,
    { path, ...(mode === undefined ? {} : { mode }) },
    { deadlineMs: FILE_OP_DEADLINE_MS, input: Buffer.from(text, "utf8") },
  );
}
