// Owns pyro's MCP server over Streamable HTTP, for clients that cannot spawn processes: bound to
// 127.0.0.1 only, every request needs the bearer token, and the Host and Origin headers must name
// this server (DNS-rebinding protection: a web page cannot make a browser talk to it). Each client
// session gets a server of its own over the one shared runtime, and a replay buffer that makes its
// SSE streams resumable (event-store.ts). The SDK's transport does the rest of the specification:
// Accept and Content-Type checks, MCP-Protocol-Version, GET streams, DELETE, replay.
import { randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { PyroError } from "../contract/errors.js";
import type { ManagerApi } from "../sdk/manager.js";
import { SessionEventStore } from "./event-store.js";
import { buildServer, type CreateServerOptions, startReaper } from "./server.js";

export const MCP_PATH = "/mcp";

export interface ServeHttpOptions extends Omit<CreateServerOptions, "manager"> {
  manager: ManagerApi;
  /** 0 picks a free port. */
  port?: number;
  /** The bearer token clients must send; generated when not given. */
  token?: string;
  /** Aborting stops the server and closes every session. */
  signal?: AbortSignal;
  /** Told the URL and token once the server listens. */
  onListening?: (info: { url: string; token: string; port: number }) => void;
  /** A session with no request and no open stream for this long is closed (default 1 h). */
  sessionIdleMs?: number;
  /** Sessions open at once; an initialize past it gets 503 (default 64). */
  maxSessions?: number;
}

const ALLOWED_METHODS = ["GET", "POST", "DELETE"];
const MAX_BODY_BYTES = 16 * 1024 * 1024;
/**
 * Sent as `retry:` in the first event of each POST stream (to clients of protocol 2025-11-25 or
 * later; older ones cannot read that empty priming event): how long a client whose connection
 * dropped waits before it reconnects with Last-Event-ID. Short, since the server is local.
 */
const RETRY_INTERVAL_MS = 1000;
// JSON-RPC error codes: the spec's, and the SDK's for a session that does not exist.
const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
const INTERNAL_ERROR = -32603;
const SERVER_ERROR = -32000;
const SESSION_NOT_FOUND = -32001;

interface Session {
  transport: StreamableHTTPServerTransport;
  events: SessionEventStore;
  /** When the last request arrived or the last open response closed. */
  lastSeen: number;
  /** Responses (calls, SSE streams) still open. */
  open: number;
}

export const SESSION_IDLE_MS = 60 * 60_000;
export const MAX_SESSIONS = 64;

/** A fresh bearer token: 32 random bytes, hex. */
export function newToken(): string {
  return randomBytes(32).toString("hex");
}

/** Serves MCP over HTTP on 127.0.0.1 until `signal` aborts. */
export async function serveHttp(options: ServeHttpOptions): Promise<void> {
  const { port = 0, signal, onListening, manager, log = () => {}, ...serverOptions } = options;
  const token = options.token ?? newToken();
  if (token.length < 16) {
    throw new PyroError("INVALID_ARGUMENT", "the HTTP bearer token must be at least 16 characters; omit it to get one");
  }
  const sessions = new Map<string, Session>();
  let allowedHosts: string[] = [];
  const idleMs = options.sessionIdleMs ?? SESSION_IDLE_MS;
  const maxSessions = options.maxSessions ?? MAX_SESSIONS;

  /** Each session's server and replay buffer live until DELETE; a client that never sends one would
   * keep them forever, so an idle session is closed like a DELETE would. */
  const closeIdle = async () => {
    const now = Date.now();
    for (const [id, session] of sessions) {
      if (session.open === 0 && now - session.lastSeen >= idleMs) {
        log(`[mcp http] closing session ${id}: idle for ${Math.round((now - session.lastSeen) / 1000)} s`);
        await session.transport.close().catch(() => {});
      }
    }
  };
  const sweeper = setInterval(() => void closeIdle(), Math.max(10, Math.min(idleMs / 4, 60_000)));
  sweeper.unref();
  const track = (session: Session, res: ServerResponse) => {
    session.open += 1;
    session.lastSeen = Date.now();
    res.once("close", () => {
      session.open -= 1;
      session.lastSeen = Date.now();
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname !== MCP_PATH) return refuse(res, 404, `not found; the MCP endpoint is ${MCP_PATH}`);
    // Host (and Origin, when a browser sends one) must be this server: DNS-rebinding protection.
    if (!allowedHosts.includes(req.headers.host ?? "")) return refuse(res, 403, "forbidden host");
    const origin = req.headers.origin;
    if (origin !== undefined && !allowedHosts.some((h) => origin === `http://${h}`)) {
      return refuse(res, 403, "forbidden origin");
    }
    if (!bearerMatches(req.headers.authorization, token)) {
      return refuse(res, 401, "missing or wrong bearer token", {
        headers: { "www-authenticate": 'Bearer realm="pyro"' },
      });
    }
    // The SDK answers 405 too, but only inside a session; this answers it for every request.
    if (!ALLOWED_METHODS.includes(req.method ?? "")) {
      const allow = ALLOWED_METHODS.join(", ");
      return refuse(res, 405, `method ${req.method} not allowed; the MCP endpoint takes ${allow}`, {
        headers: { allow },
      });
    }
    // Read here rather than by the SDK: a request without a session must be seen to be an initialize
    // before a session (and its server) is made for it.
    const body = req.method === "POST" ? await readJson(req) : undefined;
    const sessionId = req.headers["mcp-session-id"];
    const existing = typeof sessionId === "string" ? sessions.get(sessionId) : undefined;
    if (existing) {
      const lastEventId = req.headers["last-event-id"];
      // The SDK refuses an id it cannot replay from with a bare "Invalid event ID format"; say why.
      const notReplayable =
        req.method === "GET" && typeof lastEventId === "string"
          ? existing.events.whyNotReplayable(lastEventId)
          : undefined;
      if (notReplayable) return refuse(res, 400, notReplayable);
      track(existing, res);
      return existing.transport.handleRequest(req, res, body);
    }
    if (sessionId !== undefined) {
      return refuse(res, 404, "unknown or ended session; send initialize without Mcp-Session-Id to start a new one", {
        code: SESSION_NOT_FOUND,
      });
    }
    if (req.method !== "POST" || !isInitializeRequest(body)) {
      return refuse(
        res,
        400,
        "missing Mcp-Session-Id header: POST initialize first, then send the Mcp-Session-Id it returns with every request",
      );
    }
    if (sessions.size >= maxSessions) await closeIdle();
    if (sessions.size >= maxSessions) {
      return refuse(
        res,
        503,
        `too many open sessions (${maxSessions}); end unused ones with DELETE (or let them sit idle for ${Math.round(idleMs / 60_000)} min), then initialize again`,
        { code: SERVER_ERROR },
      );
    }
    const events = new SessionEventStore();
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore: events,
      retryInterval: RETRY_INTERVAL_MS,
      onsessioninitialized: (id) => {
        const session: Session = { transport, events, lastSeen: Date.now(), open: 0 };
        sessions.set(id, session);
        track(session, res);
      },
    });
    // Runs however the session ends: DELETE, the server closing, or shutdown.
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
      events.clear();
    };
    // The runtime is shared and owned here: a session's server must not close it.
    const { server } = buildServer({ ...serverOptions, manager, log, reapExpired: false });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
    // Refused by the SDK (a wrong Accept header, say): no session was made, so nothing would close it.
    if (transport.sessionId === undefined) await server.close();
  };

  const http: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof BodyError) return refuse(res, err.status, err.message, { code: err.code });
      log(`[mcp http] ${(err as Error).message}`);
      if (!res.headersSent) refuse(res, 500, `internal error: ${(err as Error).message}`, { code: INTERNAL_ERROR });
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        err.code === "EADDRINUSE"
          ? new PyroError("PORT_UNAVAILABLE", `port ${port} on 127.0.0.1 is taken; choose another --port or omit it`)
          : err,
      ),
    );
    http.listen(port, "127.0.0.1", () => resolve());
  });
  const stopReaper = startReaper(() => Promise.resolve(manager), log);
  const bound = (http.address() as AddressInfo).port;
  allowedHosts = [`127.0.0.1:${bound}`, `localhost:${bound}`];
  onListening?.({ url: `http://127.0.0.1:${bound}${MCP_PATH}`, token, port: bound });

  await new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    signal?.addEventListener("abort", () => resolve(), { once: true });
  });
  stopReaper();
  clearInterval(sweeper);
  for (const { transport } of sessions.values()) await transport.close().catch(() => {});
  http.closeAllConnections();
  await new Promise<void>((resolve) => http.close(() => resolve()));
}

/** An HTTP error whose body is a JSON-RPC error without an id, as the specification allows. */
function refuse(
  res: ServerResponse,
  status: number,
  message: string,
  { code = SERVER_ERROR, headers = {} }: { code?: number; headers?: Record<string, string> } = {},
): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }));
}

function bearerMatches(header: string | undefined, token: string): boolean {
  const given = /^Bearer (.+)$/i.exec(header ?? "")?.[1] ?? "";
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A POST body refused before it reaches the SDK, with the HTTP status and JSON-RPC code to answer. */
class BodyError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    // Not `for await`: leaving that loop early destroys the socket, and the client would never see
    // the 413. Past the limit the rest is read and discarded, so the answer reaches the client.
    req.on("data", (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) return void chunks.push(chunk);
      tooLarge = true;
      chunks.length = 0;
      reject(
        new BodyError(
          413,
          INVALID_REQUEST,
          `request body over ${MAX_BODY_BYTES / (1024 * 1024)} MiB; send less at once`,
        ),
      );
    });
    req.on("error", reject);
    req.on("end", () => {
      if (tooLarge) return;
      const text = Buffer.concat(chunks).toString("utf8");
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new BodyError(400, PARSE_ERROR, "parse error: the request body must be one JSON-RPC message in JSON"));
      }
    });
  });
}
