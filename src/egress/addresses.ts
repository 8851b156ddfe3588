// Owns which upstream addresses the gateway refuses to dial however a name resolves: loopback,
// link-local and cloud metadata, private and shared ranges, multicast, the guest-facing range pyro
// itself hands out, and the host's own addresses. A name that resolves there (DNS rebinding, a
// hosts entry) reaches nothing unless an address rule names the address.
import { BlockList, isIP } from "node:net";
import { networkInterfaces } from "node:os";

/** The block the guest's resolver answers from; the resolver itself is its first address. */
export const GATEWAY_NET = { base: "198.18.0.0", prefix: 16, resolver: "198.18.0.1" } as const;

const REFUSED: ReadonlyArray<[string, number, "ipv4" | "ipv6", string]> = [
  ["0.0.0.0", 8, "ipv4", "an unspecified address"],
  ["10.0.0.0", 8, "ipv4", "a private address"],
  ["100.64.0.0", 10, "ipv4", "a shared (carrier NAT) address"],
  ["127.0.0.0", 8, "ipv4", "a loopback address"],
  ["169.254.0.0", 16, "ipv4", "a link-local or metadata address"],
  ["172.16.0.0", 12, "ipv4", "a private address"],
  ["192.0.0.0", 24, "ipv4", "a protocol-assignment address"],
  ["192.168.0.0", 16, "ipv4", "a private address"],
  ["198.18.0.0", 15, "ipv4", "a benchmarking address (pyro's own guest-facing range)"],
  ["224.0.0.0", 3, "ipv4", "a multicast or reserved address"],
  ["::", 128, "ipv6", "an unspecified address"],
  ["::1", 128, "ipv6", "a loopback address"],
  ["::ffff:0:0", 96, "ipv6", "an IPv4-mapped address"],
  ["64:ff9b::", 96, "ipv6", "a NAT64 address"],
  ["fc00::", 7, "ipv6", "a private (unique local) address"],
  ["fe80::", 10, "ipv6", "a link-local address"],
  ["ff00::", 8, "ipv6", "a multicast address"],
];

// One list per range, each checked only for its own family: a BlockList matches an IPv4 address
// against an IPv4-mapped IPv6 block too.
const lists = REFUSED.map(([net, prefix, family, why]) => {
  const list = new BlockList();
  list.addSubnet(net, prefix, family);
  return { list, family, why };
});

/** Every address of this host's interfaces (read each time: interfaces come and go). */
export function hostAddresses(): Set<string> {
  const out = new Set<string>();
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) out.add(entry.address.replace(/%.*$/, ""));
  }
  return out;
}

/** Why the gateway must not dial `address`, or undefined when it may. */
export function refusedAddress(address: string, own: ReadonlySet<string> = hostAddresses()): string | undefined {
  const family = isIP(address);
  if (family === 0) return "not an IP address";
  if (own.has(address)) return "one of this host's own addresses";
  const type = family === 4 ? "ipv4" : "ipv6";
  return lists.find((entry) => entry.family === type && entry.list.check(address, type))?.why;
}

/** The n-th address the resolver hands out (n >= 1), skipping the block's first 256 (the resolver's). */
export function gatewayAddress(n: number): string {
  const value = 256 + n;
  return `198.18.${(value >> 8) & 0xff}.${value & 0xff}`;
}

/** How many names one workspace's resolver can hand addresses to. */
export const MAX_GATEWAY_NAMES = 65_536 - 256 - 2;
