// Owns the answers of a sandbox's only nameserver under network policy allowlist: an allowed name
// gets an IPv4 address of its own from the gateway's block (the gateway later learns from the
// address a connection dialed which name it is for), anything else NXDOMAIN, and a query that was
// sent to any other resolver is refused. Nothing is forwarded, so DNS carries nothing out.
import dnsPacket from "dns-packet";
import { normalizeName, type Policy } from "../contract/egress-rules.js";
import { GATEWAY_NET, gatewayAddress, MAX_GATEWAY_NAMES } from "./addresses.js";
import type { NetworkLog } from "./log.js";

/** Short, so a removed rule is soon forgotten by the guest too (the gateway refuses at once anyway). */
const DNS_TTL_SECONDS = 5;
const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;

export class GatewayResolver {
  private readonly byAddress = new Map<string, string>();
  private readonly byName = new Map<string, string>();

  constructor(
    private readonly policy: () => Policy,
    private readonly log: Pick<NetworkLog, "write">,
  ) {}

  /** The name an address was handed out for. */
  nameOf(address: string): string | undefined {
    return this.byAddress.get(address);
  }

  /** The reply to one query, or undefined for bytes that are not a DNS query (dropped). Never
   * throws, whatever the guest sends. */
  answer(message: Buffer, isResolver: boolean): Buffer | undefined {
    try {
      return this.reply(dnsPacket.decode(message), isResolver);
    } catch {
      return undefined;
    }
  }

  private reply(query: dnsPacket.Packet, isResolver: boolean): Buffer | undefined {
    const question = query.questions?.[0];
    if (query.type !== "query" || !question) return undefined;
    const reply = (rcode: number, answers: dnsPacket.Answer[] = []) =>
      dnsPacket.encode({
        type: "response",
        id: query.id ?? 0,
        flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | rcode,
        questions: [question],
        answers,
      });
    const name = normalizeName(question.name);
    if (!isResolver) {
      this.log.write({
        kind: "dns",
        decision: "denied",
        ...(name ? { name } : {}),
        reason: `a query to another resolver; the sandbox's only resolver is ${GATEWAY_NET.resolver}`,
      });
      return reply(RCODE.REFUSED);
    }
    if (!name) return reply(RCODE.NXDOMAIN);
    const decision = this.policy().resolves(name);
    if (!decision.allowed) {
      if (question.type === "A") {
        this.log.write({ kind: "dns", decision: "denied", name, reason: decision.reason });
      }
      return reply(RCODE.NXDOMAIN);
    }
    // Only IPv4 is served: AAAA and other types get an empty answer, so clients use the A record.
    if (question.type !== "A") return reply(RCODE.NOERROR);
    const address = this.addressFor(name);
    if (!address) {
      this.log.write({
        kind: "dns",
        decision: "denied",
        name,
        reason: `the resolver has handed out all ${MAX_GATEWAY_NAMES} addresses; restart the workspace`,
      });
      return reply(RCODE.SERVFAIL);
    }
    this.log.write({
      kind: "dns",
      decision: "allowed",
      name,
      address,
      ...(decision.rule ? { rule: decision.rule } : {}),
      reason: decision.reason,
    });
    return reply(RCODE.NOERROR, [{ type: "A", name: question.name, ttl: DNS_TTL_SECONDS, data: address }]);
  }

  private addressFor(name: string): string | undefined {
    const known = this.byName.get(name);
    if (known) return known;
    if (this.byName.size >= MAX_GATEWAY_NAMES) return undefined;
    const address = gatewayAddress(this.byName.size + 1);
    this.byName.set(name, address);
    this.byAddress.set(address, name);
    return address;
  }
}
