// Owns reading the first bytes a guest sends on a gateway connection: a TLS ClientHello's server
// name (SNI), or a plain HTTP request's head (method, target, Host). Both parsers take whatever has
// arrived so far and say "need more", an answer, or why the bytes are neither; they never throw on
// any input (the gateway is fed by a hostile guest).

/** The most the gateway buffers before it has a name; a ClientHello fits in one 16 KiB record. */
export const SNIFF_MAX_BYTES = 32 * 1024;

export type Sniffed =
  | { kind: "more" }
  | { kind: "tls"; sni: string | undefined; ech: boolean }
  | { kind: "http"; method: string; target: string; host: string | undefined; hosts: number }
  | { kind: "other"; why: string };

const TLS_HANDSHAKE = 0x16;
const CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const EXT_ENCRYPTED_CLIENT_HELLO = 0xfe0d;

export function sniff(buf: Buffer): Sniffed {
  if (buf.length === 0) return { kind: "more" };
  if (buf[0] === TLS_HANDSHAKE) return sniffTls(buf);
  if (/^[A-Z]/.test(String.fromCharCode(buf[0]!))) return sniffHttp(buf);
  return { kind: "other", why: "the connection is neither TLS nor HTTP" };
}

/** Joins the handshake bytes of the leading TLS records (a ClientHello may span records). */
function sniffTls(buf: Buffer): Sniffed {
  const parts: Buffer[] = [];
  let handshakeBytes = 0;
  let offset = 0;
  for (;;) {
    if (buf.length < offset + 5) return { kind: "more" };
    if (buf[offset] !== TLS_HANDSHAKE) return { kind: "other", why: "the TLS stream does not start with a handshake" };
    if (buf[offset + 1] !== 0x03) return { kind: "other", why: "the TLS record has an unknown version" };
    const length = buf.readUInt16BE(offset + 3);
    if (length === 0 || length > 16_384 + 256) return { kind: "other", why: "the TLS record has an invalid length" };
    if (buf.length < offset + 5 + length) return { kind: "more" };
    parts.push(buf.subarray(offset + 5, offset + 5 + length));
    handshakeBytes += length;
    offset += 5 + length;
    const handshake = Buffer.concat(parts, handshakeBytes);
    if (handshake.length < 4) continue;
    if (handshake[0] !== CLIENT_HELLO)
      return { kind: "other", why: "the first TLS handshake message is not a ClientHello" };
    const bodyLength = handshake.readUIntBE(1, 3);
    if (handshake.length < 4 + bodyLength) continue;
    return parseClientHello(handshake.subarray(4, 4 + bodyLength));
  }
}

function parseClientHello(body: Buffer): Sniffed {
  const bad: Sniffed = { kind: "other", why: "the TLS ClientHello is malformed" };
  let at = 2 + 32; // legacy_version, random
  const skip = (lengthBytes: number): boolean => {
    if (body.length < at + lengthBytes) return false;
    const length = body.readUIntBE(at, lengthBytes);
    at += lengthBytes + length;
    return body.length >= at;
  };
  if (!skip(1) || !skip(2) || !skip(1)) return bad; // session id, cipher suites, compression
  if (body.length === at) return { kind: "tls", sni: undefined, ech: false };
  if (body.length < at + 2) return bad;
  const end = at + 2 + body.readUInt16BE(at);
  if (end > body.length) return bad;
  at += 2;
  let sni: string | undefined;
  let ech = false;
  while (at + 4 <= end) {
    const type = body.readUInt16BE(at);
    const length = body.readUInt16BE(at + 2);
    const data = body.subarray(at + 4, at + 4 + length);
    at += 4 + length;
    if (at > end) return bad;
    if (type === EXT_ENCRYPTED_CLIENT_HELLO) ech = true;
    if (type !== EXT_SERVER_NAME) continue;
    if (sni !== undefined) return { kind: "other", why: "the TLS ClientHello names a server twice" };
    // server_name_list: one host_name entry is all TLS allows.
    if (data.length < 5 || data.readUInt16BE(0) !== data.length - 2 || data[2] !== 0) return bad;
    const nameLength = data.readUInt16BE(3);
    if (5 + nameLength !== data.length) return { kind: "other", why: "the TLS ClientHello names more than one server" };
    sni = data.subarray(5).toString("latin1");
  }
  if (at !== end) return bad;
  return { kind: "tls", sni, ech };
}

const METHOD = /^[A-Z]{1,16}$/;

function sniffHttp(buf: Buffer): Sniffed {
  const end = buf.indexOf("\r\n\r\n");
  if (end === -1) {
    return buf.length >= SNIFF_MAX_BYTES
      ? { kind: "other", why: `the HTTP request head is longer than ${SNIFF_MAX_BYTES} bytes` }
      : { kind: "more" };
  }
  const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
  const parts = lines[0]!.split(" ");
  if (parts.length !== 3 || !METHOD.test(parts[0]!) || !/^HTTP\/1\.[01]$/.test(parts[2]!)) {
    return { kind: "other", why: "the connection is neither TLS nor HTTP/1.x" };
  }
  let host: string | undefined;
  let hosts = 0;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) return { kind: "other", why: "the HTTP request has a malformed header line" };
    if (line.slice(0, colon).toLowerCase() !== "host") continue;
    hosts += 1;
    host = line.slice(colon + 1).trim();
  }
  return { kind: "http", method: parts[0]!, target: parts[1]!, host, hosts };
}

/** The host part of an HTTP Host header or authority (`name`, `name:port`), lower-cased. */
export function authorityHost(authority: string): string {
  return authority
    .replace(/:[0-9]*$/, "")
    .toLowerCase()
    .replace(/\.$/, "");
}
