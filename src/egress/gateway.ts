// Owns the allowlist policy's enforcement: the only way out of a sandbox whose network namespace
// has no route anywhere. Every IPv4 address in that namespace is local (a `local 0.0.0.0/0` route
// on lo), so whatever the guest dials lands on this gateway's sockets there:
//
// - UDP port 53 at the resolver address (the guest's nameserver) is answered by GatewayResolver:
//   an allowed name gets an address of its own from 198.18.0.0/16, anything else NXDOMAIN. No query
//   is forwarded, so DNS carries nothing out. Port 53 at any other address is refused.
// - TCP on every port a rule may allow: the dialed address must be one the resolver handed out,
//   its name must be allowed on that port, and the first bytes must be a TLS ClientHello whose SNI
//   is that name, or an HTTP/1.x request whose Host is that name. The gateway then resolves the
//   name itself, refuses private, loopback, link-local and its host's own addresses unless an
//   address rule names them, dials what it resolved and relays bytes. TLS to a host a secret is
//   bound to is ended here instead (Credentials). Port 3128 at the resolver's address is an
//   explicit proxy whose tunnels get the same checks.
// - Everything else (UDP other than DNS, TCP to a port no rule names) is turned towards the discard
//   port by the namespace's netfilter table (firewall.ts), refused there and logged with where it
//   was headed.
//
// Every decision goes to the workspace's network log. Rules can change while the sandbox runs.
import type { Socket as UdpSocket } from "node:dgram";
import { lookup } from "node:dns/promises";
import { readFile } from "node:fs/promises";
import { connect, isIPv4, type Server, type Socket } from "node:net";
import { type EgressRules, Policy, targetOf } from "../contract/egress-rules.js";
import { GATEWAY_NET, refusedAddress } from "./addresses.js";
import type { Credentials } from "./credentials.js";
import { DISCARD_PORT, NamespaceFirewall } from "./firewall.js";
import type { UpstreamProxy } from "./host-proxy.js";
import { openInNamespace } from "./listen.js";
import type { NetworkLog } from "./log.js";
import { GatewayResolver } from "./resolver.js";
import { authorityHost, SNIFF_MAX_BYTES, type Sniffed, sniff } from "./sniff.js";

/** How long a guest has to send its first bytes (ClientHello or request head). */
const SNIFF_TIMEOUT_MS = 10_000;
const DIAL_TIMEOUT_MS = 10_000;
/** How long the gateway reuses what a name resolved to (as long as the guest's DNS answer lives). */
const UPSTREAM_CACHE_MS = 5_000;
/** Connections through one gateway at once; more are refused (and logged). */
export const MAX_GATEWAY_CONNECTIONS = 1_024;
/** The explicit proxy's port at the resolver's address, for clients that want HTTPS_PROXY. */
export const PROXY_PORT = 3128;
/** Refused UDP is counted this long per flow, then logged as one entry. */
const UDP_WINDOW_MS = 1_000;
/** Refused UDP flows counted at once; datagrams of further flows go uncounted until one is logged. */
const MAX_UDP_FLOWS = 1_024;
const LOOPBACK = "127.0.0.1";

/** What the guest dialed: the address and port, and the name that address was handed out for. */
interface Target {
  address: string;
  port: number;
  name?: string;
}

export interface GatewayOptions {
  nsPath: string;
  rules: EgressRules;
  log: NetworkLog;
  /** Diagnostics for the supervisor's log. */
  diagnostics: (line: string) => void;
  /** A hosts-format file consulted before DNS when resolving upstream (PYRO_EGRESS_HOSTS). */
  hostsFile?: string;
  /** Secrets bound to hosts: TLS to those hosts is ended here and the placeholders swapped. */
  credentials?: Credentials;
  /** The host's explicit proxy (host_proxy): upstream connections go through it. */
  proxy?: UpstreamProxy;
}

/** Resolves a name the way the gateway dials it: the hosts file first, then the host's resolver. */
export async function resolveUpstream(name: string, hostsFile: string | undefined): Promise<string[]> {
  if (hostsFile) {
    const text = await readFile(hostsFile, "utf8").catch(() => "");
    const found: string[] = [];
    for (const line of text.split("\n")) {
      const [address, ...names] = line.replace(/#.*/, "").trim().split(/\s+/);
      if (address && names.some((n) => n.toLowerCase() === name)) found.push(address);
    }
    if (found.length > 0) return found;
  }
  const results = await lookup(name, { all: true, verbatim: true });
  return results.map((r) => r.address);
}

export class EgressGateway {
  private policy: Policy;
  private readonly resolver: GatewayResolver;
  private readonly servers = new Map<number, Server>();
  private readonly udp: UdpSocket[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly upstreamCache = new Map<string, { addresses: string[]; until: number }>();
  private readonly firewall: NamespaceFirewall;
  /** TCP ports the firewall lets through to a listener here. */
  private readonly passed = new Set<number>();
  private readonly refusedUdp = new Map<string, { datagrams: number; bytes: number }>();
  private closed = false;

  private constructor(private readonly options: GatewayOptions) {
    this.policy = new Policy(options.rules);
    this.resolver = new GatewayResolver(() => this.policy, options.log);
    this.firewall = new NamespaceFirewall(options.nsPath);
  }

  static async start(options: GatewayOptions): Promise<EgressGateway> {
    const gateway = new EgressGateway(options);
    try {
      const [resolver, elsewhere, discardUdp, discardTcp] = await openInNamespace(options.nsPath, [
        { proto: "udp", address: GATEWAY_NET.resolver, port: 53 },
        { proto: "udp", address: "0.0.0.0", port: 53 },
        { proto: "udp", address: "0.0.0.0", port: DISCARD_PORT },
        { proto: "tcp", address: "0.0.0.0", port: DISCARD_PORT },
      ]);
      gateway.serveDns(resolver as UdpSocket, true);
      gateway.serveDns(elsewhere as UdpSocket, false);
      gateway.serveDiscard(discardUdp as UdpSocket, discardTcp as Server);
      await gateway.listenOn([...gateway.policy.ports(), PROXY_PORT]);
    } catch (err) {
      gateway.close();
      throw err;
    }
    return gateway;
  }

  /** New rules apply to the next lookup and connection; connections already relaying go on. */
  async setRules(rules: EgressRules): Promise<void> {
    const policy = new Policy(rules);
    await this.listenOn(policy.ports());
    this.policy = policy;
  }

  close(): void {
    this.closed = true;
    this.firewall.close();
    for (const server of this.servers.values()) server.close();
    for (const socket of this.udp) socket.close();
    for (const socket of this.sockets) socket.destroy();
    this.servers.clear();
    this.udp.length = 0;
  }

  private async listenOn(ports: number[]): Promise<void> {
    await this.listenOnly(ports.filter((port) => !this.servers.has(port)));
    const unpassed = ports.filter((port) => !this.passed.has(port));
    await this.firewall.passPorts(unpassed);
    for (const port of unpassed) this.passed.add(port);
  }

  private async listenOnly(missing: number[]): Promise<void> {
    if (missing.length === 0) return;
    const handles = await openInNamespace(
      this.options.nsPath,
      missing.map((port) => ({ proto: "tcp" as const, address: "0.0.0.0", port })),
    );
    for (const [i, handle] of handles.entries()) {
      const server = handle as Server;
      const port = missing[i]!;
      if (this.closed) {
        server.close();
        continue;
      }
      // The guest may shut its sending side and still read the answer.
      (server as Server & { allowHalfOpen: boolean }).allowHalfOpen = true;
      server.on("connection", (socket: Socket) => this.accept(socket, port));
      server.on("error", (err) => this.options.diagnostics(`egress: listener on port ${port}: ${err.message}`));
      this.servers.set(port, server);
    }
  }

  // ---- DNS ----

  private serveDns(socket: UdpSocket, isResolver: boolean): void {
    this.udp.push(socket);
    socket.on("error", (err) => this.options.diagnostics(`egress: dns socket: ${err.message}`));
    socket.on("message", (message, remote) => {
      const reply = this.resolver.answer(message, isResolver);
      if (reply) socket.send(reply, remote.port, remote.address, () => {});
    });
  }

  // ---- what no listener is for: the firewall's discard port ----

  private serveDiscard(udp: UdpSocket, tcp: Server): void {
    this.udp.push(udp);
    udp.on("error", (err) => this.options.diagnostics(`egress: discard socket: ${err.message}`));
    udp.on("message", (message, remote) => this.countRefusedDatagram(message.length, remote.address, remote.port));
    this.servers.set(DISCARD_PORT, tcp);
    tcp.on("error", (err) => this.options.diagnostics(`egress: discard listener: ${err.message}`));
    tcp.on("connection", (socket: Socket) => {
      socket.on("error", () => {});
      // Redirected flows arrive at loopback; a rule may also allow port 9 itself, dialed directly.
      if (plainAddress(socket.localAddress) !== LOOPBACK) return this.accept(socket, DISCARD_PORT);
      const address = plainAddress(socket.remoteAddress);
      const sourcePort = socket.remotePort ?? 0;
      socket.resetAndDestroy();
      void this.logRefusedFlow("tcp", address, sourcePort);
    });
  }

  /** Refused UDP is counted per flow for a second, then logged once with where it was headed. */
  private countRefusedDatagram(bytes: number, address: string, sourcePort: number): void {
    const key = `${address}:${sourcePort}`;
    const flow = this.refusedUdp.get(key);
    if (flow) {
      flow.datagrams += 1;
      flow.bytes += bytes;
      return;
    }
    if (this.refusedUdp.size >= MAX_UDP_FLOWS) return;
    const counted = { datagrams: 1, bytes };
    this.refusedUdp.set(key, counted);
    setTimeout(() => {
      this.refusedUdp.delete(key);
      void this.logRefusedFlow("udp", address, sourcePort, counted);
    }, UDP_WINDOW_MS).unref();
  }

  /** Logs a flow the firewall turned away: its destination comes from the firewall's flow set (the
   * socket only shows the discard port), the name from the resolver. */
  private async logRefusedFlow(
    proto: "tcp" | "udp",
    sourceAddress: string,
    sourcePort: number,
    counted?: { datagrams: number; bytes: number },
  ): Promise<void> {
    const origin = await this.firewall.origin(proto, sourceAddress, sourcePort);
    const name = origin && this.resolver.nameOf(origin.address);
    let reason: string;
    let rule: string | undefined;
    if (proto === "udp") {
      reason = `UDP goes nowhere but DNS to the sandbox's resolver (${GATEWAY_NET.resolver}:53)`;
    } else if (!origin) {
      reason = "TCP to a port no rule allows (its destination was not recorded)";
    } else if (!name) {
      reason = unnamedReason(origin.address);
    } else {
      const decision = this.policy.check(name, origin.port);
      reason = decision.allowed ? `port ${origin.port} was not open yet; retry` : decision.reason;
      rule = decision.rule;
    }
    this.options.log.write({
      kind: proto === "udp" ? "udp" : "connect",
      decision: "denied",
      ...(name ? { name } : {}),
      ...(origin ? { address: origin.address, port: origin.port } : {}),
      ...(rule ? { rule } : {}),
      reason,
      ...(counted ? { datagrams: counted.datagrams, bytes_out: counted.bytes } : {}),
    });
  }

  /** What a name resolves to on the host, kept for the DNS answer's TTL so a burst of connections
   * (a package install) costs one lookup. */
  private async upstream(name: string): Promise<string[]> {
    const cached = this.upstreamCache.get(name);
    if (cached && cached.until > Date.now()) return cached.addresses;
    const addresses = await resolveUpstream(name, this.options.hostsFile);
    if (this.upstreamCache.size >= MAX_GATEWAY_CONNECTIONS) this.upstreamCache.clear();
    this.upstreamCache.set(name, { addresses, until: Date.now() + UPSTREAM_CACHE_MS });
    return addresses;
  }

  // ---- TCP ----

  private accept(socket: Socket, port: number): void {
    socket.on("error", () => {});
    // A relay must not hold back small writes (TLS handshakes are several): Nagle would add delay.
    socket.setNoDelay(true);
    const address = plainAddress(socket.localAddress);
    if (this.sockets.size >= MAX_GATEWAY_CONNECTIONS) {
      this.refuse(socket, { address, port }, `more than ${MAX_GATEWAY_CONNECTIONS} connections at once`);
      return;
    }
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    const done =
      address === GATEWAY_NET.resolver && port === PROXY_PORT
        ? this.explicitProxy(socket)
        : this.inspect(socket, { address, port, name: this.resolver.nameOf(address) });
    void done.catch((err: Error) => this.refuse(socket, { address, port }, err.message));
  }

  /** Logs a refusal and closes the connection; an HTTP client gets a 403 saying why. */
  private refuse(socket: Socket, target: Target, reason: string, extra: { rule?: string; http?: boolean } = {}): void {
    this.options.log.write({
      kind: "connect",
      decision: "denied",
      ...(target.name ? { name: target.name } : {}),
      address: target.address,
      port: target.port,
      ...(extra.rule ? { rule: extra.rule } : {}),
      reason,
    });
    if (!extra.http || socket.destroyed) {
      socket.destroy();
      return;
    }
    const body = `pyro egress: ${reason}\n`;
    socket.end(
      `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    setTimeout(() => socket.destroy(), 1_000).unref();
  }

  /** A transparent connection (or a tunnel the explicit proxy opened): its first bytes must name
   * the name its address belongs to, and that name must be allowed on the port. */
  private async inspect(socket: Socket, target: Target, first?: Buffer): Promise<void> {
    const read = await readHead(socket, first);
    if ("problem" in read) return this.refuse(socket, target, read.problem);
    const { head, seen } = read;
    const http = seen.kind === "http";
    const { name } = target;
    if (!name) return this.refuse(socket, target, unnamedReason(target.address), { http });
    const problem = this.checkFirstBytes(name, seen);
    if (problem) return this.refuse(socket, target, problem, { http });
    const decision = this.policy.check(name, target.port);
    if (!decision.allowed) {
      return this.refuse(socket, target, decision.reason, { ...(decision.rule ? { rule: decision.rule } : {}), http });
    }
    try {
      if (seen.kind === "tls" && this.options.credentials?.isBound(name)) {
        this.options.credentials.terminate(socket, head, {
          name,
          port: target.port,
          address: target.address,
          open: await this.route(name, target.port),
        });
        return;
      }
      await this.relay(socket, target as Target & { name: string }, head, decision.rule);
    } catch (err) {
      this.refuse(socket, target, (err as Error).message, { http });
    }
  }

  /** The explicit proxy at the resolver's address (HTTPS_PROXY=http://198.18.0.1:3128): CONNECT
   * to an allowed HOST:PORT opens a tunnel that is then inspected like a direct connection; an
   * absolute-form request (GET http://host/...) is checked and relayed as it is. */
  private async explicitProxy(socket: Socket): Promise<void> {
    const proxy: Target = { address: GATEWAY_NET.resolver, port: PROXY_PORT };
    const read = await readHead(socket);
    if ("problem" in read) return this.refuse(socket, proxy, read.problem);
    const { head, seen } = read;
    if (seen.kind !== "http")
      return this.refuse(socket, proxy, "the proxy speaks HTTP/1.x: CONNECT or an absolute URL");
    // CONNECT names HOST:PORT (443 when it names no port); any other method an absolute URL.
    let name: string;
    let port: number;
    try {
      ({ name, port } = targetOf(seen.method === "CONNECT" ? `https://${seen.target}` : seen.target));
      if (seen.method !== "CONNECT" && !/^http:\/\//i.test(seen.target)) throw new Error("not an http:// URL");
    } catch {
      return this.refuse(socket, proxy, `the proxy request names ${JSON.stringify(seen.target)}, not a host name`, {
        http: true,
      });
    }
    const target: Target = { address: proxy.address, port, name };
    if (seen.method !== "CONNECT") return this.inspect(socket, target, head);
    const decision = this.policy.check(name, port);
    if (!decision.allowed) {
      return this.refuse(socket, target, decision.reason, {
        ...(decision.rule ? { rule: decision.rule } : {}),
        http: true,
      });
    }
    const rest = head.subarray(head.indexOf("\r\n\r\n") + 4);
    socket.write("HTTP/1.1 200 Connection established\r\n\r\n");
    return this.inspect(socket, target, rest);
  }

  private checkFirstBytes(name: string, seen: Sniffed): string | undefined {
    switch (seen.kind) {
      case "more":
        return `no TLS ClientHello or HTTP request head within ${SNIFF_MAX_BYTES} bytes`;
      case "other":
        return `${seen.why}; only TLS with a server name and plain HTTP/1.x pass`;
      case "tls":
        if (seen.ech) return "the TLS ClientHello uses encrypted client hello, which hides the server name";
        if (seen.sni === undefined) return "the TLS ClientHello carries no server name (SNI)";
        if (authorityHost(seen.sni) !== name) {
          return `the TLS server name ${JSON.stringify(seen.sni)} is not ${name}, the name this address belongs to`;
        }
        return undefined;
      case "http": {
        if (seen.method === "CONNECT") return "CONNECT (a relayed tunnel) is refused; connect to the name directly";
        if (seen.hosts !== 1 || seen.host === undefined) return "the HTTP request must carry exactly one Host header";
        if (authorityHost(seen.host) !== name) {
          return `the HTTP Host ${JSON.stringify(seen.host)} is not ${name}, the name this address belongs to`;
        }
        if (!seen.target.startsWith("/")) {
          let target: URL;
          try {
            target = new URL(seen.target);
          } catch {
            return `the HTTP request target ${JSON.stringify(seen.target.slice(0, 100))} is neither a path nor a URL`;
          }
          if (authorityHost(target.host) !== name) return `the HTTP request target names ${target.host}, not ${name}`;
        }
        return undefined;
      }
    }
  }

  /** How the gateway reaches name:port, once checked: at the addresses it resolved, or through the
   * host's proxy, which resolves the name itself. Where the host resolves it too, a name that
   * resolves only to refused addresses is refused the same either way. */
  private async route(name: string, port: number): Promise<() => Promise<Socket>> {
    const { proxy } = this.options;
    if (proxy?.covers(name)) {
      const resolvable = await this.upstream(name).then(
        () => true,
        () => false,
      );
      if (resolvable) await this.usableAddresses(name);
      return () => proxy.connect(name, port);
    }
    const usable = await this.usableAddresses(name);
    return () => dial(usable, port);
  }

  /** The addresses `name` resolves to that the gateway may dial; throws saying why there are none. */
  private async usableAddresses(name: string): Promise<string[]> {
    let candidates: string[];
    try {
      candidates = await this.upstream(name);
    } catch (err) {
      throw new Error(
        `${name} does not resolve on the host (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
    const reasons: string[] = [];
    const usable = candidates.filter((candidate) => {
      const why = refusedAddress(candidate);
      if (why && !this.policy.allowsAddress(candidate)) reasons.push(`${candidate} is ${why}`);
      return !why || this.policy.allowsAddress(candidate);
    });
    if (usable.length === 0) {
      throw new Error(
        `${name} resolves only to refused addresses (${reasons.join("; ")}); an address rule (--allow-host ADDRESS) admits one`,
      );
    }
    return usable;
  }

  private async relay(
    socket: Socket,
    target: Target & { name: string },
    head: Buffer,
    rule: string | undefined,
  ): Promise<void> {
    const { name, address, port } = target;
    const started = Date.now();
    const upstream = await (await this.route(name, port))();
    if (socket.destroyed || this.closed) {
      upstream.destroy();
      return;
    }
    const upstreamAddress = plainAddress(upstream.remoteAddress);
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
    let bytesOut = head.length;
    let bytesIn = 0;
    socket.on("data", (chunk: Buffer) => {
      bytesOut += chunk.length;
    });
    upstream.on("data", (chunk: Buffer) => {
      bytesIn += chunk.length;
    });
    upstream.write(head);
    socket.pipe(upstream);
    upstream.pipe(socket);
    socket.resume();
    this.sockets.add(upstream);
    let open = 2;
    const closed = () => {
      if (--open > 0) return;
      this.sockets.delete(upstream);
      this.options.log.write({
        kind: "connect",
        decision: "allowed",
        name,
        address,
        port,
        upstream: upstreamAddress,
        ...(rule ? { rule } : {}),
        reason: rule ? `allowed by rule ${rule}` : "allowed",
        bytes_out: bytesOut,
        bytes_in: bytesIn,
        duration_ms: Date.now() - started,
      });
    };
    // Half-closes travel through the pipes; a side that is gone altogether takes the other with it.
    socket.once("close", () => {
      upstream.destroy();
      closed();
    });
    upstream.once("close", () => {
      socket.destroy();
      closed();
    });
  }
}

function plainAddress(address: string | undefined): string {
  return (address ?? "").replace(/^::ffff:/, "");
}

function unnamedReason(address: string): string {
  return isIPv4(address)
    ? `${address} is an address, not a name the sandbox's resolver gave out; connect by an allowed name`
    : "the connection has no local address";
}

/** Reads until the first bytes say what the connection is (a ClientHello, a request head), bounded
 * in bytes and time; `first` is what an earlier reader already took. */
function readHead(socket: Socket, first?: Buffer): Promise<{ head: Buffer; seen: Sniffed } | { problem: string }> {
  return new Promise((resolve) => {
    let head = first ?? Buffer.alloc(0);
    const finish = (result: { head: Buffer; seen: Sniffed } | { problem: string }) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.pause();
      resolve(result);
    };
    const judge = (): boolean => {
      const seen = sniff(head);
      if (seen.kind === "more" && head.length < SNIFF_MAX_BYTES) return false;
      finish({ head, seen });
      return true;
    };
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      judge();
    };
    const onEnd = () => finish({ problem: "the guest closed before sending a request" });
    const timer = setTimeout(
      () => finish({ problem: `nothing identifiable arrived within ${SNIFF_TIMEOUT_MS} ms` }),
      SNIFF_TIMEOUT_MS,
    );
    if (head.length > 0 && judge()) return;
    socket.on("data", onData);
    socket.once("end", onEnd);
    socket.resume();
  });
}

/** Connects to the first of `addresses` that answers; each attempt is bounded. */
async function dial(addresses: string[], port: number): Promise<Socket> {
  const failures: string[] = [];
  for (const host of addresses) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const socket = connect({ host, port, allowHalfOpen: true, noDelay: true });
        const timer = setTimeout(() => {
          socket.destroy();
          reject(new Error("timed out"));
        }, DIAL_TIMEOUT_MS);
        socket.once("connect", () => {
          clearTimeout(timer);
          socket.removeAllListeners("error");
          resolve(socket);
        });
        socket.once("error", (err: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          reject(new Error(err.code ?? err.message));
        });
      });
    } catch (err) {
      failures.push(`${host}: ${(err as Error).message}`);
    }
  }
  throw new Error(`no upstream address answered on port ${port} (${failures.join("; ")})`);
}
