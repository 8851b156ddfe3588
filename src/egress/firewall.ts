// Owns the netfilter table in an allowlist sandbox's namespace. Every address there is local, so a
// connection reaches the gateway only on a port it listens on; without this table, UDP other than
// DNS and TCP to a port no rule names would be refused by the kernel unseen, and never logged. The
// table turns all of that towards the gateway's discard sockets (port 9) and remembers where each
// such flow was headed, so the gateway can log the name and port it refused. Nothing is forwarded:
// the namespace still has no route out.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Where refused flows land, TCP and UDP alike (the discard port). */
export const DISCARD_PORT = 9;
/** Refused packets per second that reach the gateway; beyond that the kernel drops them uncounted. */
export const REFUSED_PACKETS_PER_SECOND = 1_000;
/** Flows whose destination is remembered at once (each for a minute). */
const MAX_FLOWS = 65_536;
/** Lookups wait this long so a burst of refusals costs one `nft` run. */
const BATCH_MS = 50;
/** Refusals waiting for their destination at once; beyond this they are logged without it. */
const MAX_WAITING = 4_096;
const TABLE = "pyro_egress";

/** The nft program: sbin is often missing from an ordinary user's PATH (rootless pyro). */
export const NFT = ["/usr/sbin/nft", "/sbin/nft"].find((path) => existsSync(path)) ?? "nft";
/** What to install when NFT is missing. */
export const NFT_MISSING = "the allowlist policy needs nft on the host (Debian: apt-get install nftables)";

/**
 * The table, as one `nft` argument:
 * - `ports`: TCP ports the gateway listens on; connections to them pass untouched.
 * - `flows`: protocol, source address and port, destination address and port of every other flow
 *   (DNS excepted, which the gateway's port-53 sockets answer and log).
 * - Those flows are redirected to the discard port, at a bounded rate.
 * - Echo requests (ping) are dropped: they would be answered by the namespace itself.
 */
export function firewallRuleset(): string {
  return [
    `table ip ${TABLE} {`,
    `set ports { type inet_service; };`,
    `set flows { type inet_proto . ipv4_addr . inet_service . ipv4_addr . inet_service; size ${MAX_FLOWS}; flags dynamic,timeout; timeout 1m; };`,
    `chain towards_gateway { type nat hook output priority -100; policy accept;`,
    `udp dport 53 return;`,
    `tcp dport @ports return;`,
    `meta l4proto { tcp, udp } update @flows { meta l4proto . ip saddr . th sport . ip daddr . th dport };`,
    `meta l4proto { tcp, udp } redirect to :${DISCARD_PORT}; };`,
    `chain bounded { type filter hook output priority 0; policy accept;`,
    // Every address is local here, so the namespace would answer a guest's ping to anywhere itself
    // (QEMU's user-mode network passes pings on): drop them, nothing is there.
    `icmp type echo-request drop;`,
    `ip daddr 127.0.0.1 meta l4proto { tcp, udp } th dport ${DISCARD_PORT} limit rate over ${REFUSED_PACKETS_PER_SECOND}/second burst ${REFUSED_PACKETS_PER_SECOND} packets drop; };`,
    `}`,
  ].join(" ");
}

/** Where a refused flow was headed. */
export interface FlowOrigin {
  address: string;
  port: number;
}

interface Waiting {
  key: string;
  resolve: (origin: FlowOrigin | undefined) => void;
}

export class NamespaceFirewall {
  private waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly nsPath: string) {}

  /** Lets TCP to these ports through to the gateway's listeners on them. */
  async passPorts(ports: number[]): Promise<void> {
    if (ports.length === 0) return;
    await this.nft(["add", "element", "ip", TABLE, "ports", `{ ${ports.join(", ")} }`]);
  }

  /** Where the flow from this source address and port was headed; undefined once forgotten. */
  origin(proto: "tcp" | "udp", sourceAddress: string, sourcePort: number): Promise<FlowOrigin | undefined> {
    if (this.waiting.length >= MAX_WAITING) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.waiting.push({ key: flowKey(proto, sourceAddress, sourcePort), resolve });
      this.timer ??= setTimeout(() => void this.lookUp(), BATCH_MS);
    });
  }

  close(): void {
    clearTimeout(this.timer);
    for (const { resolve } of this.waiting.splice(0)) resolve(undefined);
  }

  private async lookUp(): Promise<void> {
    this.timer = undefined;
    const batch = this.waiting.splice(0);
    let flows = new Map<string, FlowOrigin>();
    try {
      flows = parseFlows((await this.nft(["-j", "list", "set", "ip", TABLE, "flows"])).stdout);
    } catch {
      // The namespace is gone (the sandbox stopped): what was waiting is logged without its port.
    }
    for (const { key, resolve } of batch) resolve(flows.get(key));
  }

  private nft(args: string[]): Promise<{ stdout: string }> {
    return run("nsenter", [`--net=${this.nsPath}`, "--", NFT, ...args], { timeout: 5_000, maxBuffer: 64 << 20 });
  }
}

function flowKey(proto: unknown, sourceAddress: unknown, sourcePort: unknown): string {
  return `${String(proto)} ${String(sourceAddress)}:${String(sourcePort)}`;
}

/** `nft -j list set` output, keyed by protocol, source address and port. */
export function parseFlows(json: string): Map<string, FlowOrigin> {
  const flows = new Map<string, FlowOrigin>();
  const listing = JSON.parse(json) as { nftables?: Array<{ set?: { elem?: unknown[] } }> };
  for (const item of listing.nftables ?? []) {
    for (const element of item.set?.elem ?? []) {
      const value = (element as { elem?: { val?: unknown } }).elem?.val ?? element;
      const concat = (value as { concat?: unknown[] }).concat;
      if (!Array.isArray(concat) || concat.length !== 5) continue;
      const [proto, sourceAddress, sourcePort, address, port] = concat;
      if (typeof address !== "string" || typeof port !== "number") continue;
      flows.set(flowKey(proto, sourceAddress, sourcePort), { address, port });
    }
  }
  return flows;
}
