// Owns credentials the guest never sees. A secret bound to hosts reaches the guest only as a
// placeholder. For those hosts alone, the gateway terminates TLS with a certificate from the
// workspace's own CA (name-constrained to those hosts, and trusted by the guest). It swaps the
// placeholder for the value in each request's headers, and sends the request on over TLS it
// verifies itself. Whatever the host sends back has the value masked, so an echo cannot carry it
// into the guest. Every other host's TLS is tunnelled untouched by the gateway.
import { execFile } from "node:child_process";
import { mkdir, readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import { join } from "node:path";
import { Duplex, PassThrough, Transform } from "node:stream";
import { createSecureContext, rootCertificates, type SecureContext, TLSSocket, connect as tlsConnect } from "node:tls";
import { promisify } from "node:util";
import { PyroError } from "../contract/errors.js";
import type { NetworkLogEntry } from "../contract/workspace.js";
import { HOST_CA_BUNDLES } from "../util/ca-bundles.js";
import { authorityHost } from "./sniff.js";

const exec = promisify(execFile);

/** openssl makes the workspace's egress CA and its certificates; its absence is said plainly. */
async function openssl(args: string[]): Promise<void> {
  try {
    await exec("openssl", args, { timeout: 30_000 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") {
      throw new PyroError(
        "HOST_REQUIREMENT_MISSING",
        "secrets bound to hosts need openssl on the host to make the workspace's egress CA; install it (apt-get install openssl)",
      );
    }
    throw new PyroError("INTERNAL", `openssl ${args[0]} failed: ${(e.stderr ?? e.message).trim().slice(0, 500)}`);
  }
}
const UPSTREAM_TIMEOUT_MS = 30_000;

/** One secret bound to a host: what the guest holds, and what the host receives instead. */
export interface BoundSecret {
  name: string;
  placeholder: string;
}

export interface CredentialConfig {
  /** The workspace's secrets file (name -> value), read by the supervisor alone. */
  secretsFile: string;
  /** The workspace's egress CA, which signs a certificate for each bound host. */
  caCert: string;
  caKey: string;
  /** Bound host -> the secrets swapped in its requests. */
  hosts: Record<string, BoundSecret[]>;
}

/** A fresh P-256 key for `openssl req`, written unencrypted to `keyout`. */
const newEcKey = (keyout: string) => [
  "-newkey",
  "ec",
  "-pkeyopt",
  "ec_paramgen_curve:P-256",
  "-nodes",
  "-keyout",
  keyout,
];

/** Makes the workspace's egress CA, allowed to sign for `hosts` only (X.509 name constraints). */
export async function createEgressCa(hosts: string[], caCert: string, caKey: string, label: string): Promise<void> {
  const permitted = hosts.map((h) => `permitted;DNS:${h}`).join(",");
  await openssl([
    "req",
    "-x509",
    ...newEcKey(caKey),
    "-out",
    caCert,
    "-days",
    "3650",
    "-subj",
    `/CN=pyro egress CA ${label}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE,pathlen:0",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
    "-addext",
    `nameConstraints=critical,${permitted}`,
  ]);
}

async function leafCertificate(host: string, config: CredentialConfig, dir: string): Promise<SecureContext> {
  const key = join(dir, `${host}.key`);
  const cert = join(dir, `${host}.pem`);
  await openssl([
    "req",
    "-x509",
    "-new",
    ...newEcKey(key),
    "-out",
    cert,
    "-days",
    "30",
    "-subj",
    `/CN=${host}`,
    "-addext",
    `subjectAltName=DNS:${host}`,
    "-addext",
    "basicConstraints=critical,CA:FALSE",
    "-addext",
    "extendedKeyUsage=serverAuth",
    "-CA",
    config.caCert,
    "-CAkey",
    config.caKey,
  ]);
  return createSecureContext({ key: await readFile(key), cert: await readFile(cert) });
}

/** What the host's own TLS clients trust: Node's roots, the system bundle, NODE_EXTRA_CA_CERTS. */
async function upstreamRoots(): Promise<string[]> {
  const roots = [...rootCertificates];
  for (const file of [...HOST_CA_BUNDLES, process.env.NODE_EXTRA_CA_CERTS]) {
    if (file)
      roots.push(
        ...(await readFile(file, "utf8").then(
          (text) => [text],
          () => [],
        )),
      );
  }
  return roots;
}

/** Replaces every occurrence of each value with as many '*': lengths stay as the host sent them. */
export function maskValues(buf: Buffer, values: readonly Buffer[]): void {
  for (const value of values) {
    for (let at = buf.indexOf(value); at !== -1; at = buf.indexOf(value, at + value.length)) {
      buf.fill(0x2a, at, at + value.length);
    }
  }
}

/** A stream that masks values even when one is split across chunks (it holds back a short tail). */
export function maskingStream(values: readonly string[]): Transform {
  const needles = values.filter((v) => v.length > 0).map((v) => Buffer.from(v));
  const keep = Math.max(0, ...needles.map((n) => n.length - 1));
  let tail = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      const buf = Buffer.concat([tail, chunk]);
      maskValues(buf, needles);
      const cut = Math.max(0, buf.length - keep);
      tail = Buffer.from(buf.subarray(cut));
      done(null, buf.subarray(0, cut));
    },
    flush(done) {
      maskValues(tail, needles);
      done(null, tail);
    },
  });
}

interface Connection {
  name: string;
  port: number;
  address: string;
  /** Opens the TCP connection upstream (directly, or a tunnel through the host's proxy). */
  open: () => Promise<Socket>;
}

export interface CredentialEvents {
  log(entry: Omit<NetworkLogEntry, "time">): void;
}

export class Credentials {
  private readonly server = createServer();
  private readonly connections = new WeakMap<object, Connection>();
  private constructor(
    private readonly bound: Map<string, Array<BoundSecret & { value: string }>>,
    private readonly contexts: Map<string, SecureContext>,
    private readonly roots: string[],
    private readonly events: CredentialEvents,
  ) {
    this.server.on("request", (req, res) => this.forward(req, res));
    this.server.on("upgrade", (req, socket) => {
      this.refuse(req, "a protocol upgrade (WebSocket) to a host with a bound credential is not relayed");
      socket.destroy();
    });
    this.server.on("clientError", (_err, socket) => socket.destroy());
  }

  /** Reads the bound secrets' values and makes each bound host's certificate under `dir`. */
  static async load(config: CredentialConfig, dir: string, events: CredentialEvents): Promise<Credentials> {
    const values = JSON.parse(await readFile(config.secretsFile, "utf8")) as Record<string, string>;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const bound = new Map<string, Array<BoundSecret & { value: string }>>();
    const contexts = new Map<string, SecureContext>();
    for (const [host, secrets] of Object.entries(config.hosts)) {
      bound.set(
        host,
        secrets.map((s) => {
          const value = values[s.name];
          if (!value) throw new Error(`secret ${s.name}, bound to ${host}, has no value in ${config.secretsFile}`);
          return { ...s, value };
        }),
      );
      contexts.set(host, await leafCertificate(host, config, dir));
    }
    return new Credentials(bound, contexts, await upstreamRoots(), events);
  }

  isBound(name: string): boolean {
    return this.bound.has(name);
  }

  /** Takes over a TLS connection to a bound host whose ClientHello (`head`) was already read: TLS
   * is ended here, and each request on it goes to forward(). */
  terminate(socket: Socket, head: Buffer, connection: Connection): void {
    // A stream, not the socket itself: TLS over a socket reads its handle and would miss `head`.
    const input = new PassThrough();
    input.write(head);
    socket.pipe(input);
    socket.resume();
    const stream = Duplex.from({ readable: input, writable: socket });
    const secure = new TLSSocket(stream as unknown as Socket, {
      isServer: true,
      secureContext: this.contexts.get(connection.name)!,
      ALPNProtocols: ["http/1.1"],
    });
    secure.on("error", () => {
      secure.destroy();
      socket.destroy();
    });
    socket.once("close", () => secure.destroy());
    this.connections.set(secure, connection);
    this.server.emit("connection", secure);
  }

  private refuse(req: IncomingMessage, reason: string): void {
    const connection = this.connections.get(req.socket);
    this.events.log({
      kind: "connect",
      decision: "denied",
      ...(connection ? { name: connection.name, address: connection.address, port: connection.port } : {}),
      reason,
    });
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    const connection = this.connections.get(req.socket);
    const fail = (status: number, reason: string) => {
      this.refuse(req, reason);
      res.writeHead(status, { "content-type": "text/plain", connection: "close" });
      res.end(`pyro egress: ${reason}\n`);
    };
    if (!connection) {
      fail(500, "the connection lost its gateway context");
      return;
    }
    if (authorityHost(req.headers.host ?? "") !== connection.name) {
      fail(421, `the HTTP Host ${JSON.stringify(req.headers.host ?? "")} is not ${connection.name}`);
      return;
    }
    const secrets = this.bound.get(connection.name) ?? [];
    const used = new Set<string>();
    const headers: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const key = req.rawHeaders[i]!;
      let value = req.rawHeaders[i + 1]!;
      // The host answers uncompressed, so a value it echoes can be found and masked.
      if (key.toLowerCase() === "accept-encoding") continue;
      for (const secret of secrets) {
        if (value.includes(secret.placeholder)) {
          value = value.replaceAll(secret.placeholder, secret.value);
          used.add(secret.name);
        }
      }
      headers.push(key, value);
    }
    headers.push("Accept-Encoding", "identity");
    const started = Date.now();
    let bytesOut = 0;
    let bytesIn = 0;
    let upstreamAddress = "";
    const upstream = httpsRequest({
      host: connection.name,
      port: connection.port,
      servername: connection.name,
      // TLS to the host over the connection the gateway opened for it (the address it checked).
      createConnection: (_options, created) => {
        connection.open().then(
          (raw) => {
            upstreamAddress = (raw.remoteAddress ?? "").replace(/^::ffff:/, "");
            created(null, tlsConnect({ socket: raw, servername: connection.name, ca: this.roots }));
          },
          (err: Error) => created(err, undefined as unknown as Duplex),
        );
        return undefined;
      },
      method: req.method,
      path: req.url,
      headers: headers as unknown as Record<string, string>,
      // No agent: with one, Node would dial by itself and ignore createConnection.
      timeout: UPSTREAM_TIMEOUT_MS,
    });
    upstream.on("timeout", () => upstream.destroy(new Error(`no answer within ${UPSTREAM_TIMEOUT_MS} ms`)));
    upstream.on("error", (err) => {
      if (!res.headersSent) fail(502, `${connection.name} could not be reached: ${err.message}`);
      else res.destroy();
    });
    const values = secrets.map((s) => s.value);
    const needles = values.map((v) => Buffer.from(v));
    upstream.on("response", (answer) => {
      const out: string[] = [];
      for (let i = 0; i < answer.rawHeaders.length; i += 2) {
        const value = Buffer.from(answer.rawHeaders[i + 1]!);
        maskValues(value, needles);
        out.push(answer.rawHeaders[i]!, value.toString());
      }
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, out);
      answer.on("data", (chunk: Buffer) => {
        bytesIn += chunk.length;
      });
      answer.pipe(maskingStream(values)).pipe(res);
      res.once("finish", () =>
        this.events.log({
          kind: "connect",
          decision: "allowed",
          name: connection.name,
          address: connection.address,
          port: connection.port,
          upstream: upstreamAddress,
          reason: `${req.method} ${req.url?.split("?")[0]} with credential ${[...used].join(", ") || "none used"}`,
          ...(used.size > 0 ? { credentials: [...used] } : {}),
          bytes_out: bytesOut,
          bytes_in: bytesIn,
          duration_ms: Date.now() - started,
        }),
      );
    });
    req.on("data", (chunk: Buffer) => {
      bytesOut += chunk.length;
    });
    req.pipe(upstream);
  }
}
