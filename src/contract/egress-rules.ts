// Owns the allowlist policy's rules: their grammar (`HOST[:PORT]`, `*.` wildcards, IPv4 addresses
// and CIDR blocks), the named presets (plain rule lists), and the one decision every other part
// asks for: may this name be reached on this port, and which rule says so.
//
// A name rule lets the guest resolve and reach that name; a rule without a port means 80 and 443.
// An address rule (`10.1.2.3`, `10.0.0.0/8`) reaches nothing by itself: the guest never dials an
// address. It lets an allowed name resolve to an address pyro otherwise refuses (private ranges,
// loopback, the host's own). A deny rule wins over every allow rule; one without a port denies the
// name on every port, and its DNS answer too.
import { BlockList, isIPv4 } from "node:net";
import { PyroError } from "./errors.js";

/** The ports a rule without one allows. */
export const DEFAULT_PORTS: readonly number[] = [80, 443];
/** Rules per list, so a record and every check stay small. */
export const MAX_RULES = 256;

export type Rule =
  | { kind: "name"; text: string; name: string; wildcard: boolean; port?: number }
  | { kind: "address"; text: string; address: string; prefix: number };

export interface EgressRules {
  allow: string[];
  deny: string[];
}

export interface Decision {
  allowed: boolean;
  /** The rule that decided, as the user wrote it; absent when no rule matched. */
  rule?: string;
  reason: string;
}

/** Plain rule lists for the registries agents install from; `status` shows the rules, not the name. */
export const PRESETS: Readonly<Record<string, readonly string[]>> = {
  npm: ["registry.npmjs.org", "registry.yarnpkg.com"],
  pypi: ["pypi.org", "files.pythonhosted.org"],
  debian: ["deb.debian.org", "security.debian.org"],
  github: [
    "github.com",
    "api.github.com",
    "codeload.github.com",
    "objects.githubusercontent.com",
    "raw.githubusercontent.com",
  ],
};

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

function invalid(text: string, why: string): PyroError {
  return new PyroError(
    "INVALID_ARGUMENT",
    `network rule ${JSON.stringify(text)} ${why}; write HOST[:PORT] where HOST is a name (api.example.com), ` +
      "a wildcard (*.example.com) or an IPv4 address or block (10.0.0.0/8), e.g. --allow-host registry.npmjs.org",
  );
}

/** Lower-cases a DNS name and drops one trailing dot; undefined when it is not a valid name. */
export function normalizeName(raw: string): string | undefined {
  const name = raw.toLowerCase().replace(/\.$/, "");
  if (name.length === 0 || name.length > 253) return undefined;
  const labels = name.split(".");
  // A numeric last label is an address written as a name (10.0.0.1), never a host name.
  if (/^[0-9]+$/.test(labels.at(-1)!)) return undefined;
  return labels.every((label) => LABEL.test(label)) ? name : undefined;
}

export function parseRule(text: string): Rule {
  if (typeof text !== "string" || text.trim() !== text || text.length === 0 || text.length > 300) {
    throw invalid(String(text), "is empty, too long or has spaces");
  }
  let host = text;
  let port: number | undefined;
  const colon = text.lastIndexOf(":");
  if (colon !== -1) {
    const portText = text.slice(colon + 1);
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw invalid(text, "has a port that is not 1-65535 (IPv6 addresses are not supported)");
    }
    port = Number(portText);
    host = text.slice(0, colon);
  }
  const block = /^([0-9.]+)(?:\/([0-9]{1,2}))?$/.exec(host);
  if (block) {
    const [, address, prefixText] = block;
    const prefix = prefixText === undefined ? 32 : Number(prefixText);
    if (!isIPv4(address!) || prefix > 32) throw invalid(text, "is not an IPv4 address or block");
    if (port !== undefined)
      throw invalid(text, "gives a port to an address rule, which only widens what names may resolve to");
    return { kind: "address", text, address: address!, prefix };
  }
  const wildcard = host.startsWith("*.");
  const name = normalizeName(wildcard ? host.slice(2) : host);
  if (name === undefined) throw invalid(text, "is not a valid host name");
  if (wildcard && !name.includes(".")) throw invalid(text, "is a wildcard over a whole top-level domain");
  return { kind: "name", text, name, wildcard, ...(port === undefined ? {} : { port }) };
}

/** Validates, de-duplicates and bounds a rule list; returns it as written (rules stay readable). */
export function checkRules(list: readonly string[], which: "allow" | "deny"): string[] {
  const unique = [...new Set(list)];
  if (unique.length > MAX_RULES) {
    throw new PyroError("INVALID_ARGUMENT", `${unique.length} ${which} rules given; at most ${MAX_RULES} are kept`);
  }
  for (const text of unique) {
    const rule = parseRule(text);
    if (which === "deny" && rule.kind === "address") {
      throw invalid(text, "is an address in the deny list; addresses are refused unless allowed, so deny names");
    }
  }
  return unique;
}

export function expandPresets(names: readonly string[]): string[] {
  return names.flatMap((name) => {
    const rules = PRESETS[name];
    if (!rules) {
      throw new PyroError(
        "INVALID_ARGUMENT",
        `no network preset named ${JSON.stringify(name)}; the presets are ${Object.keys(PRESETS).join(", ")}`,
      );
    }
    return [...rules];
  });
}

function nameMatches(rule: Extract<Rule, { kind: "name" }>, name: string): boolean {
  return rule.wildcard ? name.endsWith(`.${rule.name}`) : name === rule.name;
}

/** The compiled form of a rule list pair; cheap to rebuild when the rules change. */
export class Policy {
  private readonly allow: Rule[];
  private readonly deny: Rule[];
  private readonly addresses = new BlockList();

  constructor(readonly rules: EgressRules) {
    this.allow = rules.allow.map(parseRule);
    this.deny = rules.deny.map(parseRule);
    for (const rule of this.allow) {
      if (rule.kind === "address") this.addresses.addSubnet(rule.address, rule.prefix, "ipv4");
    }
  }

  /** May the guest connect to `name` on `port`? */
  check(name: string, port: number): Decision {
    for (const rule of this.deny) {
      if (rule.kind === "name" && nameMatches(rule, name) && (rule.port === undefined || rule.port === port)) {
        return { allowed: false, rule: rule.text, reason: `denied by rule ${rule.text}` };
      }
    }
    for (const rule of this.allow) {
      if (rule.kind !== "name" || !nameMatches(rule, name)) continue;
      if (rule.port === undefined ? DEFAULT_PORTS.includes(port) : rule.port === port) {
        return { allowed: true, rule: rule.text, reason: `allowed by rule ${rule.text}` };
      }
    }
    return { allowed: false, reason: `no allow rule covers ${name}:${port}` };
  }

  /** Does the resolver give the guest an address for `name` (some port of it may be allowed)? */
  resolves(name: string): Decision {
    for (const rule of this.deny) {
      if (rule.kind === "name" && rule.port === undefined && nameMatches(rule, name)) {
        return { allowed: false, rule: rule.text, reason: `denied by rule ${rule.text}` };
      }
    }
    const rule = this.allow.find((r) => r.kind === "name" && nameMatches(r, name));
    return rule
      ? { allowed: true, rule: rule.text, reason: `allowed by rule ${rule.text}` }
      : { allowed: false, reason: `no allow rule names ${name}` };
  }

  /** The ports some rule may allow, which the gateway listens on. */
  ports(): number[] {
    const ports = new Set<number>(DEFAULT_PORTS);
    for (const rule of this.allow) if (rule.kind === "name" && rule.port !== undefined) ports.add(rule.port);
    return [...ports].sort((a, b) => a - b);
  }

  /** True when an address rule lets a name resolve to this (otherwise refused) address. */
  allowsAddress(address: string): boolean {
    return isIPv4(address) && this.addresses.check(address, "ipv4");
  }
}

/** The port a URL of each scheme means when it names none. */
const SCHEME_PORTS: Record<string, number> = { "http:": 80, "https:": 443, "git:": 9418, "ssh:": 22 };

/** Splits what a user would fetch (a URL or HOST:PORT) into the name and port the gateway sees. */
export function targetOf(text: string): { name: string; port: number } {
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`);
  } catch {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `${JSON.stringify(text)} is not a URL or HOST:PORT; e.g. https://registry.npmjs.org/`,
    );
  }
  const name = normalizeName(url.hostname);
  if (!name) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `${JSON.stringify(url.hostname)} is not a host name; the guest reaches only names, never addresses, under allowlist`,
    );
  }
  const port = url.port ? Number(url.port) : SCHEME_PORTS[url.protocol];
  if (port === undefined) {
    throw new PyroError("INVALID_ARGUMENT", `${url.protocol} has no default port; write the port, e.g. ${name}:8443`);
  }
  return { name, port };
}
