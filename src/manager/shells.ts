// Owns the host side of PTY shells: open, read by cursor (raw or rendered as a person would see
// the terminal, optionally waiting for the output to go quiet), write, signal and close. The agent
// keeps each shell and its output buffer inside the sandbox, so a shell outlives the process that
// opened it; every read is redacted here, including a secret split between two reads.
import type { z } from "zod";
import { type AgentShellInfo, ShellOp } from "../channel/protocol.js";
import type {
  ShellInfo,
  ShellOpenParams,
  ShellReadParams,
  ShellReadResult,
  ShellRefParams,
  ShellSignalParams,
  ShellWriteParams,
  ShellWriteResult,
} from "../contract/interactive.js";
import type { SupervisorClient } from "../supervisor/client.js";
import { guestPath } from "./guest.js";
import type { OpenWorkspace } from "./open-workspace.js";
import type { WorkspaceRecord } from "./records.js";
import type { WorkspaceService } from "./workspaces.js";

const SHELL_OP_DEADLINE_MS = 30_000;
/** What the agent keeps of a shell's output; a plain read replays it to know the terminal's state. */
const SHELL_BUFFER_BYTES = 1_048_576;

export class ShellService {
  constructor(private readonly workspaces: WorkspaceService) {}

  async open(params: z.output<typeof ShellOpenParams>): Promise<ShellInfo> {
    return this.withWorkspace(params.workspace, async (ws) => {
      const env = await ws.environment(params.secret_env);
      const client = await ws.client();
      const info = await client.call(
        ShellOp.OPEN,
        { cwd: guestPath(params.cwd), cols: params.cols, rows: params.rows, env },
        { deadlineMs: SHELL_OP_DEADLINE_MS },
      );
      await ws.touch();
      return shellInfo(ws.record, info);
    });
  }

  /** A read: it never bumps last_activity_at. */
  async read(params: z.output<typeof ShellReadParams>): Promise<ShellReadResult> {
    return this.withWorkspace(params.workspace, async (ws) => {
      const redactor = await ws.redactor();
      const client = await ws.client();
      const chunks: Buffer[] = [];
      const reply = await client.call(
        ShellOp.READ,
        {
          shell_id: params.shell_id,
          cursor: params.cursor,
          max_bytes: params.max_chars,
          wait_for_idle_ms: params.wait_for_idle_ms,
          max_wait_ms: params.max_wait_ms,
          history_max_bytes: params.plain ? SHELL_BUFFER_BYTES : redactor.lookbehindBytes,
        },
        { deadlineMs: params.max_wait_ms + SHELL_OP_DEADLINE_MS, onData: (_stream, chunk) => chunks.push(chunk) },
      );
      const bytes = Buffer.concat(chunks);
      const historyLength = reply.cursor - reply.history_start;
      const history = bytes.subarray(0, historyLength);
      let output = bytes.subarray(historyLength);
      // A running shell's output may end in the first part of a secret: leave that for the next read.
      const raw = output.toString("utf8");
      const piece = redactor.redactPiece(history.toString("utf8"), raw, { holdBack: reply.state === "running" });
      const heldBytes = Buffer.byteLength(raw.slice(raw.length - piece.held));
      if (heldBytes > 0) output = output.subarray(0, output.length - heldBytes);
      const text = params.plain
        ? // The headless terminal is loaded only when a caller asks for plain text.
          redactor.redact(await (await import("./screen.js")).renderPlain(history, output, reply.cols, reply.rows))
        : piece.text;
      return {
        ...shellInfo(ws.record, reply),
        output: text,
        cursor: reply.cursor,
        next_cursor: reply.next_cursor - heldBytes,
        truncated: reply.truncated,
        plain: params.plain,
      };
    });
  }

  async write(params: z.output<typeof ShellWriteParams>): Promise<ShellWriteResult> {
    return this.withWorkspace(params.workspace, async (ws) => {
      const client = await ws.client();
      // Enter on a terminal sends a carriage return; the line discipline turns it into a newline.
      const text = params.append_newline ? `${params.input}\r` : params.input;
      const reply = await client.call(
        ShellOp.WRITE,
        { shell_id: params.shell_id, input: text },
        { deadlineMs: SHELL_OP_DEADLINE_MS },
      );
      await ws.touch();
      return { workspace_id: ws.id, shell_id: params.shell_id, bytes_written: reply.bytes_written };
    });
  }

  async signal(params: z.output<typeof ShellSignalParams>): Promise<ShellInfo> {
    return this.call(params.workspace, (client) =>
      client.call(
        ShellOp.SIGNAL,
        { shell_id: params.shell_id, signal: params.signal },
        { deadlineMs: SHELL_OP_DEADLINE_MS },
      ),
    );
  }

  async close(params: z.output<typeof ShellRefParams>): Promise<ShellInfo> {
    return this.call(params.workspace, (client) =>
      client.call(ShellOp.CLOSE, { shell_id: params.shell_id }, { deadlineMs: SHELL_OP_DEADLINE_MS }),
    );
  }

  /** Sends one shell operation that answers with the shell's info. */
  private call(workspace: string, send: (client: SupervisorClient) => Promise<AgentShellInfo>): Promise<ShellInfo> {
    return this.withWorkspace(workspace, async (ws) => {
      const info = await send(await ws.client());
      await ws.touch();
      return shellInfo(ws.record, info);
    });
  }

  /** Resolves the workspace and redacts any error on the way out. */
  private async withWorkspace<T>(ref: string, fn: (ws: OpenWorkspace) => Promise<T>): Promise<T> {
    const ws = await this.workspaces.open(ref);
    return ws.redacting(() => fn(ws));
  }
}

function shellInfo(record: WorkspaceRecord, info: AgentShellInfo): ShellInfo {
  return {
    workspace_id: record.workspace_id,
    shell_id: info.shell_id,
    state: info.state,
    exit_code: info.exit_code,
    cwd: info.cwd,
    cols: info.cols,
    rows: info.rows,
    started_at: info.started_at,
    execution_mode: record.engine,
  };
}
