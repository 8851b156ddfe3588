// Owns pyro's MCP server over Streamable HTTP, for clients that cannot spawn processes: bound to
// 127.0.0.1 only, every request needs the bearer token, and the Host and Origin headers must name
// this server (DNS-rebinding protection: a web page cannot make a browser talk to it). Each client
// session gets a server of its own over the one shared runtime.
import { randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { PyroError } from "../contract/errors.js";
import type { ManagerApi } from "../sdk/manager.js";
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
}

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
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  let allowedHosts: string[] = [];

  const refuse = (res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
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
      return refuse(res, 401, "missing or wrong bearer token", { "www-authenticate": 'Bearer realm="pyro"' });
    }
    const body = req.method === "POST" ? await readJson(req) : undefined;
    const sessionId = req.headers["mcp-session-id"];
    const existing = typeof sessionId === "string" ? sessions.get(sessionId) : undefined;
    if (existing) return existing.handleRequest(req, res, body);
    if (sessionId !== undefined) return refuse(res, 404, "unknown session; initialize a new one");
    if (req.method !== "POST" || !isInitializeRequest(body)) {
      return refuse(res, 400, "no session: send an initialize request first");
    }
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, transport);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    // The runtime is shared and owned here: a session's server must not close it.
    const { server } = buildServer({ ...serverOptions, manager, log, reapExpired: false });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  };

  const http: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log(`[mcp http] ${(err as Error).message}`);
      if (!res.headersSent) refuse(res, 400, (err as Error).message);
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
  for (const transport of sessions.values()) await transport.close().catch(() => {});
  http.closeAllConnections();
  await new Promise<void>((resolve) => http.close(() => resolve()));
}

function bearerMatches(header: string | undefined, token: string): boolean {
  const given = /^Bearer (.+)$/i.exec(header ?? "")?.[1] ?? "";
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 16 * 1024 * 1024) throw new Error("request body larger than 16 MiB");
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    throw new Error("the request body is not JSON");
  }
}
