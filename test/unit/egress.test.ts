// The allowlist policy's parts that need no sandbox: the rule grammar and decisions, the addresses
// the gateway refuses to dial, the first-bytes parsers (TLS ClientHello SNI, HTTP request heads),
// the resolver's answers, the network log, and the manager's rule updates and dry run. The parsers
// and the resolver take bytes from a hostile guest, so each also gets a property test: no input
// makes them throw, and splitting a real ClientHello anywhere only ever asks for more bytes.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect as connectTcp, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect as tlsConnect } from "node:tls";
import dnsPacket from "dns-packet";
import fc from "fast-check";
import { secretFlags } from "../../src/cli/flags.js";
import {
  checkRules,
  expandPresets,
  MAX_RULES,
  Policy,
  PRESETS,
  parseRule,
  targetOf,
} from "../../src/contract/egress-rules.js";
import { PyroError } from "../../src/contract/errors.js";
import { parseParams } from "../../src/contract/parse.js";
import type { NetworkLogEntry } from "../../src/contract/workspace.js";
import { WorkspaceCreateParams } from "../../src/contract/workspace.js";
import { GATEWAY_NET, gatewayAddress, refusedAddress } from "../../src/egress/addresses.js";
import { maskingStream, maskValues } from "../../src/egress/credentials.js";
import { DISCARD_PORT, firewallRuleset, parseFlows } from "../../src/egress/firewall.js";
import {
  hostProxyAtCreate,
  maskedHostProxy,
  proxyEnvironment,
  readHostProxy,
  UpstreamProxy,
} from "../../src/egress/host-proxy.js";
import { NETWORK_LOG_MAX_BYTES, NetworkLog, readNetworkLog } from "../../src/egress/log.js";
import { GatewayResolver } from "../../src/egress/resolver.js";
import { authorityHost, SNIFF_MAX_BYTES, sniff } from "../../src/egress/sniff.js";
import { boundSecrets, checkPolicy, rulesAfterUpdate, rulesAtCreate } from "../../src/manager/network-rules.js";
import { HOST_CA_BUNDLES, loadTrust } from "../../src/manager/trust.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

function invalidArgument(fn: () => unknown, mentions: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof PyroError, String(err));
    assert.equal(err.code, "INVALID_ARGUMENT");
    assert.match(err.message, mentions);
    return true;
  });
}

describe("egress rules", () => {
  it("reads names, wildcards, ports and IPv4 blocks, and says what is wrong with the rest", () => {
    assert.deepEqual(parseRule("Registry.NPMjs.org."), {
      kind: "name",
      text: "Registry.NPMjs.org.",
      name: "registry.npmjs.org",
      wildcard: false,
    });
    assert.deepEqual(parseRule("*.example.com:8443"), {
      kind: "name",
      text: "*.example.com:8443",
      name: "example.com",
      wildcard: true,
      port: 8443,
    });
    assert.deepEqual(parseRule("10.0.0.0/8"), { kind: "address", text: "10.0.0.0/8", address: "10.0.0.0", prefix: 8 });
    invalidArgument(() => parseRule("bad host"), /not a valid host name/);
    invalidArgument(() => parseRule("example.com:0"), /port that is not 1-65535/);
    invalidArgument(() => parseRule("example.com:99999"), /port that is not 1-65535/);
    invalidArgument(() => parseRule("*.com"), /whole top-level domain/);
    invalidArgument(() => parseRule("10.0.0.0/33"), /not an IPv4 address or block/);
    invalidArgument(() => parseRule("10.1.2.3:443"), /address rule/);
    invalidArgument(() => parseRule("[::1]:443"), /IPv6|not a valid/);
    invalidArgument(() => parseRule(" x.com"), /spaces/);
    invalidArgument(() => checkRules(["10.0.0.0/8"], "deny"), /deny names/);
    invalidArgument(
      () =>
        checkRules(
          Array.from({ length: MAX_RULES + 1 }, (_, i) => `h${i}.test`),
          "allow",
        ),
      new RegExp(`at most ${MAX_RULES}`),
    );
  });

  it("allows a name on 80 and 443 unless a rule names the port; a wildcard covers subdomains only; deny wins", () => {
    const policy = new Policy({
      allow: ["api.example.com", "*.cdn.example.com", "git.example.com:9418", "*.example.org"],
      deny: ["secret.example.org", "api.example.com:80"],
    });
    const allowed = (name: string, port: number) => policy.check(name, port).allowed;
    assert.equal(allowed("api.example.com", 443), true);
    assert.equal(allowed("api.example.com", 80), false, "a deny rule with a port denies that port");
    assert.equal(allowed("api.example.com", 8080), false, "no port in the rule means 80 and 443 only");
    assert.equal(allowed("a.cdn.example.com", 443), true);
    assert.equal(allowed("a.b.cdn.example.com", 443), true);
    assert.equal(allowed("cdn.example.com", 443), false, "*.x does not cover x itself");
    assert.equal(allowed("evilcdn.example.com", 443), false);
    assert.equal(allowed("git.example.com", 9418), true);
    assert.equal(allowed("git.example.com", 443), false);
    assert.equal(allowed("www.example.org", 443), true);
    assert.deepEqual(policy.check("secret.example.org", 443), {
      allowed: false,
      rule: "secret.example.org",
      reason: "denied by rule secret.example.org",
    });
    assert.equal(policy.resolves("secret.example.org").allowed, false, "a portless deny also hides the name");
    assert.equal(policy.resolves("api.example.com").allowed, true, "a deny on one port leaves the name resolvable");
    assert.equal(policy.resolves("other.test").allowed, false);
    assert.deepEqual(policy.ports(), [80, 443, 9418]);
    assert.match(policy.check("other.test", 443).reason, /no allow rule covers other\.test:443/);
  });

  it("lets an address rule admit a refused upstream address, and nothing else", () => {
    const policy = new Policy({ allow: ["10.1.0.0/16", "build.internal"], deny: [] });
    assert.equal(policy.allowsAddress("10.1.2.3"), true);
    assert.equal(policy.allowsAddress("10.2.0.1"), false);
    assert.equal(policy.check("10.1.2.3", 443).allowed, false, "an address rule reaches nothing by itself");
  });

  it("expands presets into plain rules and refuses unknown ones by name", () => {
    assert.deepEqual(expandPresets(["npm"]), [...PRESETS.npm!]);
    invalidArgument(() => expandPresets(["npn"]), /no network preset named "npn"; the presets are npm, pypi/);
  });

  it("never throws anything but a PyroError, whatever the rule text", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        try {
          parseRule(text);
        } catch (err) {
          assert.ok(err instanceof PyroError, String(err));
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe("egress upstream addresses", () => {
  it("refuses loopback, private, link-local, metadata, mapped and the host's own; passes public ones", () => {
    const own = new Set(["203.0.113.7"]);
    for (const [address, why] of [
      ["127.0.0.1", /loopback/],
      ["10.1.2.3", /private/],
      ["172.20.0.1", /private/],
      ["192.168.1.1", /private/],
      ["169.254.169.254", /metadata/],
      ["100.64.0.1", /carrier/],
      ["0.0.0.0", /unspecified/],
      ["198.18.1.1", /pyro's own/],
      ["224.0.0.1", /multicast/],
      ["::1", /loopback/],
      ["::ffff:127.0.0.1", /IPv4-mapped/],
      ["fd00::1", /unique local/],
      ["fe80::1", /link-local/],
      ["203.0.113.7", /host's own/],
      ["not-an-ip", /not an IP/],
    ] as const) {
      assert.match(refusedAddress(address, own) ?? "allowed", why, address);
    }
    for (const address of ["203.0.113.8", "93.184.216.34", "2606:4700::1111"]) {
      assert.equal(refusedAddress(address, own), undefined, address);
    }
  });

  it("hands out addresses from its own block, above the resolver's", () => {
    assert.equal(gatewayAddress(1), "198.18.1.1");
    assert.equal(gatewayAddress(255), "198.18.1.255");
    assert.equal(gatewayAddress(256), "198.18.2.0");
    assert.equal(GATEWAY_NET.resolver, "198.18.0.1");
  });
});

/** A real ClientHello, as Node's TLS client sends it for `servername`. */
async function clientHello(servername: string): Promise<Buffer> {
  const server = createServer();
  const hello = new Promise<Buffer>((resolve) =>
    server.once("connection", (socket) => {
      let data = Buffer.alloc(0);
      socket.on("data", (chunk: Buffer) => {
        data = Buffer.concat([data, chunk]);
        if (sniff(data).kind !== "more") {
          resolve(data);
          socket.destroy();
        }
      });
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const client = tlsConnect({ host: "127.0.0.1", port, servername });
  client.on("error", () => {});
  const bytes = await hello;
  client.destroy();
  server.close();
  return bytes;
}

describe("egress first bytes", () => {
  let hello: Buffer;
  before(async () => {
    hello = await clientHello("registry.npmjs.org");
  });

  it("finds the server name in a real ClientHello, and asks for more at every cut before its end", () => {
    assert.deepEqual(sniff(hello), { kind: "tls", sni: "registry.npmjs.org", ech: false });
    for (let cut = 1; cut < hello.length; cut++) {
      assert.equal(sniff(hello.subarray(0, cut)).kind, "more", `cut at ${cut} of ${hello.length}`);
    }
  });

  it("joins a ClientHello split over two TLS records", () => {
    const body = hello.subarray(5);
    const half = Math.floor(body.length / 2);
    const record = (part: Buffer) =>
      Buffer.concat([Buffer.from([0x16, 0x03, 0x01, part.length >> 8, part.length & 0xff]), part]);
    const split = Buffer.concat([record(body.subarray(0, half)), record(body.subarray(half))]);
    assert.deepEqual(sniff(split), { kind: "tls", sni: "registry.npmjs.org", ech: false });
  });

  it("reads an HTTP request head: method, target, and every Host header", () => {
    assert.deepEqual(sniff(Buffer.from("GET /x HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\n\r\n")), {
      kind: "http",
      method: "GET",
      target: "/x",
      host: "a.test",
      hosts: 1,
    });
    const twice = sniff(Buffer.from("GET / HTTP/1.1\r\nHost: a.test\r\nhost: b.test\r\n\r\n"));
    assert.equal(twice.kind === "http" && twice.hosts, 2);
    assert.equal(sniff(Buffer.from("GET / HTTP/1.1\r\nHost: a.test\r\n")).kind, "more");
    assert.equal(sniff(Buffer.from("CONNECT b.test:443 HTTP/1.1\r\n\r\n")).kind, "http");
    assert.equal(sniff(Buffer.from("SSH-2.0-OpenSSH_9.2\r\n")).kind, "more");
    assert.equal(sniff(Buffer.from("SSH-2.0-OpenSSH_9.2\r\n\r\n")).kind, "other");
    assert.equal(sniff(Buffer.from([0x00, 0x01])).kind, "other");
    assert.equal(sniff(Buffer.alloc(SNIFF_MAX_BYTES, "A")).kind, "other");
    assert.equal(authorityHost("A.Test:8080"), "a.test");
  });

  it("never throws on any bytes, and never names a server the bytes do not carry", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (bytes, asTls) => {
        const buf = Buffer.from(bytes);
        if (asTls && buf.length > 0) buf[0] = 0x16;
        const seen = sniff(buf);
        if (seen.kind === "tls" && seen.sni !== undefined) assert.ok(buf.includes(Buffer.from(seen.sni, "latin1")));
      }),
      { numRuns: RUNS },
    );
    // Corrupting one byte of a real ClientHello must not crash the parser either.
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 0, max: 255 }), (at, value) => {
        const copy = Buffer.from(hello);
        copy[at % copy.length] = value;
        sniff(copy);
      }),
      { numRuns: RUNS },
    );
  });
});

describe("egress resolver", () => {
  /** dns-packet's decoder sets rcode; its types leave it out. */
  const decode = (reply: Buffer | undefined) => dnsPacket.decode(reply!) as dnsPacket.DecodedPacket & { rcode: string };
  const firstAddress = (reply: dnsPacket.DecodedPacket) => (reply.answers?.[0] as { data?: string } | undefined)?.data;
  const query = (name: string, type: "A" | "AAAA" | "TXT" = "A") =>
    dnsPacket.encode({ type: "query", id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] });
  const logged: Array<Omit<NetworkLogEntry, "time">> = [];
  let policy = new Policy({ allow: ["allowed.test", "*.wild.test"], deny: ["no.wild.test"] });
  const resolver = new GatewayResolver(() => policy, { write: (entry) => logged.push(entry) });

  it("gives an allowed name an address of its own, the same each time, and maps it back", () => {
    const reply = decode(resolver.answer(query("allowed.test"), true));
    assert.equal(reply.id, 7);
    assert.equal(reply.rcode, "NOERROR");
    assert.deepEqual(
      reply.answers?.map((a) => [a.type, a.name, (a as { data: string }).data]),
      [["A", "allowed.test", "198.18.1.1"]],
    );
    const again = decode(resolver.answer(query("ALLOWED.test."), true));
    assert.equal(firstAddress(again), "198.18.1.1");
    const wild = decode(resolver.answer(query("a.wild.test"), true));
    assert.equal(firstAddress(wild), "198.18.1.2");
    assert.equal(resolver.nameOf("198.18.1.2"), "a.wild.test");
    assert.equal(resolver.nameOf("198.18.1.3"), undefined);
    assert.deepEqual(logged.at(-1), {
      kind: "dns",
      decision: "allowed",
      name: "a.wild.test",
      address: "198.18.1.2",
      rule: "*.wild.test",
      reason: "allowed by rule *.wild.test",
    });
  });

  it("answers NXDOMAIN for other and denied names, REFUSED for queries to another resolver, and logs both", () => {
    for (const name of ["other.test", "no.wild.test"]) {
      assert.equal(decode(resolver.answer(query(name), true)).rcode, "NXDOMAIN", name);
      assert.equal(logged.at(-1)?.decision, "denied");
      assert.equal(logged.at(-1)?.name, name);
    }
    const elsewhere = decode(resolver.answer(query("allowed.test"), false));
    assert.equal(elsewhere.rcode, "REFUSED");
    assert.match(logged.at(-1)?.reason ?? "", /another resolver/);
    const aaaa = decode(resolver.answer(query("allowed.test", "AAAA"), true));
    assert.deepEqual([aaaa.rcode, aaaa.answers?.length], ["NOERROR", 0]);
  });

  it("follows the policy it is given at each query", () => {
    policy = new Policy({ allow: [], deny: [] });
    assert.equal(decode(resolver.answer(query("allowed.test"), true)).rcode, "NXDOMAIN");
    policy = new Policy({ allow: ["allowed.test"], deny: [] });
    assert.equal(decode(resolver.answer(query("allowed.test"), true)).rcode, "NOERROR");
  });

  it("drops bytes that are not a query, and never throws", () => {
    assert.equal(resolver.answer(Buffer.from("hello"), true), undefined);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, isResolver) => {
        resolver.answer(Buffer.from(bytes), isResolver);
      }),
      { numRuns: RUNS },
    );
  });
});

describe("egress firewall", () => {
  it("reads where each refused flow was headed from nft's listing, keyed by protocol and source", () => {
    // The shape `nft -j list set ip pyro_egress flows` prints (nftables 1.0.6), with a timeout.
    const listing = JSON.stringify({
      nftables: [
        { metainfo: { version: "1.0.6", json_schema_version: 1 } },
        {
          set: {
            family: "ip",
            name: "flows",
            table: "pyro_egress",
            elem: [
              { elem: { val: { concat: ["udp", "198.18.0.1", 38970, "8.8.8.8", 9999] }, expires: 59 } },
              { elem: { val: { concat: ["tcp", "198.18.0.1", 47576, "198.18.1.1", 22] }, expires: 58 } },
              { concat: ["udp", "198.51.100.2", 38970, "198.51.100.2", 443] },
              { elem: { val: { concat: ["tcp", "198.18.0.1", 1] } } },
              "junk",
            ],
          },
        },
      ],
    });
    const flows = parseFlows(listing);
    assert.deepEqual(flows.get("udp 198.18.0.1:38970"), { address: "8.8.8.8", port: 9999 });
    assert.deepEqual(flows.get("tcp 198.18.0.1:47576"), { address: "198.18.1.1", port: 22 });
    // One socket sending to two places: the source address tells the flows apart.
    assert.deepEqual(flows.get("udp 198.51.100.2:38970"), { address: "198.51.100.2", port: 443 });
    assert.equal(flows.size, 3);
    assert.equal(parseFlows(JSON.stringify({ nftables: [{ set: { name: "flows" } }] })).size, 0);
  });

  it("lets DNS and the gateway's ports through and turns every other flow to the discard port, at a bounded rate", () => {
    const rules = firewallRuleset();
    assert.match(rules, /udp dport 53 return; tcp dport @ports return; .*update @flows .*redirect to :9;/);
    assert.equal(DISCARD_PORT, 9);
    assert.match(rules, /limit rate over \d+\/second .* drop/);
  });
});

describe("egress network log", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "pyro-netlog-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("appends in order, skips a torn line, and rolls over to one previous file at its size limit", async () => {
    const path = join(dir, "network.log");
    const log = new NetworkLog(path);
    for (let i = 0; i < 3; i++) log.write({ kind: "connect", decision: "denied", port: i, reason: `r${i}` });
    await log.flushed();
    await writeFile(path, `${await readFile(path, "utf8")}{"torn":`);
    assert.deepEqual(
      (await readNetworkLog(path, 10)).map((e) => e.port),
      [0, 1, 2],
    );
    assert.deepEqual(
      (await readNetworkLog(path, 2)).map((e) => e.port),
      [1, 2],
    );
    const big = "x".repeat(64 * 1024);
    const rolling = new NetworkLog(join(dir, "big.log"));
    for (let i = 0; i < (2 * NETWORK_LOG_MAX_BYTES) / big.length + 4; i++) {
      rolling.write({ kind: "dns", decision: "allowed", reason: big });
    }
    await rolling.flushed();
    const sizes = await Promise.all(["big.log", "big.log.1"].map(async (f) => (await readFile(join(dir, f))).length));
    for (const size of sizes) assert.ok(size <= NETWORK_LOG_MAX_BYTES, `${size} bytes`);
  });
});

describe("allowlist rules in the manager", () => {
  const none = { allow_hosts: [], deny_hosts: [], allow_presets: [] };

  it("records rules only under allowlist, with presets expanded", () => {
    assert.equal(rulesAtCreate("egress", none), null);
    assert.deepEqual(rulesAtCreate("allowlist", { ...none, allow_presets: ["pypi"], allow_hosts: ["x.test"] }), {
      allow: ["pypi.org", "files.pythonhosted.org", "x.test"],
      deny: [],
    });
    assert.throws(
      () => rulesAtCreate("egress", { ...none, allow_hosts: ["x.test"] }),
      /apply to network policy allowlist, not egress; add --network-policy allowlist/,
    );
    assert.throws(
      () => parseParams(WorkspaceCreateParams, { network_policy: "allowlist", allow_hosts: ["bad host"] }, "create"),
      /network rule "bad host" is not a valid host name/,
    );
  });

  it("adds and removes rules, refuses to remove one that is not there, and refuses other policies", () => {
    const current = { allow: ["a.test", "b.test"], deny: ["c.test"] };
    assert.deepEqual(
      rulesAfterUpdate("ws-1", "allowlist", current, {
        ...none,
        allow_hosts: ["d.test"],
        remove_hosts: ["a.test", "c.test"],
      }),
      { allow: ["b.test", "d.test"], deny: [] },
    );
    assert.equal(rulesAfterUpdate("ws-1", "allowlist", current, { ...none, remove_hosts: [] }), undefined);
    assert.throws(
      () => rulesAfterUpdate("ws-1", "allowlist", current, { ...none, remove_hosts: ["z.test"] }),
      /no rule "z.test" to remove; the rules are allow \[a.test, b.test\] and deny \[c.test\]/,
    );
    assert.throws(
      () => rulesAfterUpdate("ws-1", "egress", undefined, { ...none, allow_hosts: ["d.test"], remove_hosts: [] }),
      (err: PyroError) => err.code === "NETWORK_POLICY_DENIED",
    );
  });

  it("dry-runs a URL or HOST:PORT against the rules and every policy", () => {
    assert.deepEqual(targetOf("https://Registry.npmjs.org/left-pad"), { name: "registry.npmjs.org", port: 443 });
    assert.deepEqual(targetOf("http://a.test"), { name: "a.test", port: 80 });
    assert.deepEqual(targetOf("a.test:8443"), { name: "a.test", port: 8443 });
    invalidArgument(() => targetOf("https://10.0.0.1/"), /not a host name/);
    const rules = { allow: ["a.test"], deny: [] };
    assert.deepEqual(checkPolicy("ws-1", "allowlist", rules, "https://a.test/x"), {
      workspace_id: "ws-1",
      network_policy: "allowlist",
      name: "a.test",
      port: 443,
      allowed: true,
      rule: "a.test",
      reason: "allowed by rule a.test",
    });
    assert.equal(checkPolicy("ws-1", "allowlist", rules, "a.test:8080").allowed, false);
    assert.equal(checkPolicy("ws-1", "off", undefined, "a.test:443").allowed, false);
    assert.equal(checkPolicy("ws-1", "egress", undefined, "a.test:443").allowed, true);
  });
});

describe("extra CA certificates for the guest", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "pyro-trust-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("reads the host's bundle and named PEM files, and refuses what is not a certificate, naming the file", async () => {
    assert.equal(await loadTrust({ ca_files: [], host_ca: false }), undefined);
    const host = await loadTrust({ ca_files: [], host_ca: true });
    assert.ok(host && host.certificates > 10, "the host's system bundle holds many CAs");
    assert.equal(
      host.sources[0],
      HOST_CA_BUNDLES.find((p) => host.sources.includes(p)),
    );
    const one = join(dir, "one.pem");
    const firstBlock = host.pem.slice(0, host.pem.indexOf("-----END CERTIFICATE-----") + 25);
    await writeFile(one, `comment line\n${firstBlock}\n`);
    assert.deepEqual(await loadTrust({ ca_files: [one], host_ca: false }), {
      pem: `${firstBlock}\n`,
      certificates: 1,
      sources: [one],
    });
    const empty = join(dir, "empty.pem");
    await writeFile(empty, "no certificate here\n");
    await assert.rejects(
      loadTrust({ ca_files: [empty], host_ca: false }),
      /ca file .*empty\.pem holds no PEM certificate/,
    );
    const broken = join(dir, "broken.pem");
    await writeFile(broken, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    await assert.rejects(
      loadTrust({ ca_files: [broken], host_ca: false }),
      /certificate 1 in ca file .*broken\.pem is not valid/,
    );
    await assert.rejects(
      loadTrust({ ca_files: [join(dir, "missing.pem")], host_ca: false }),
      /cannot be read \(ENOENT\)/,
    );
  });
});

describe("credentials bound to hosts", () => {
  it("masks a value wherever the host's answer carries it, split across chunks or not, keeping lengths", async () => {
    const value = "s3cr3t-value";
    const text = `a${value}b${value}${value}c`;
    for (let cut = 0; cut <= text.length; cut++) {
      const stream = maskingStream([value, "other"]);
      const out: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => out.push(chunk));
      const ended = new Promise((resolve) => stream.on("end", resolve));
      stream.write(Buffer.from(text.slice(0, cut)));
      stream.end(Buffer.from(text.slice(cut)));
      await ended;
      const masked = Buffer.concat(out).toString();
      assert.equal(masked, text.replaceAll(value, "*".repeat(value.length)), `cut at ${cut}`);
    }
    const header = Buffer.from(`Bearer ${value}`);
    maskValues(header, [Buffer.from(value)]);
    assert.equal(header.toString(), `Bearer ${"*".repeat(value.length)}`);
  });

  it("binds only under allowlist, only to names the rules allow on 443", () => {
    const rules = { allow: ["api.test", "*.cdn.test"], deny: [] };
    assert.deepEqual(
      boundSecrets("allowlist", rules, [{ name: "A", hosts: ["API.test", "api.test"] }, { name: "B" }]),
      [{ name: "A", hosts: ["api.test"] }],
    );
    assert.deepEqual(boundSecrets("egress", null, [{ name: "B" }]), []);
    invalidArgument(
      () => boundSecrets("egress", null, [{ name: "A", hosts: ["api.test"] }]),
      /needs network policy allowlist/,
    );
    invalidArgument(
      () => boundSecrets("allowlist", rules, [{ name: "A", hosts: ["other.test"] }]),
      /bound to other\.test, which the allowlist does not allow on port 443; add --allow-host other\.test/,
    );
    invalidArgument(() => boundSecrets("allowlist", rules, [{ name: "A", hosts: ["10.0.0.1"] }]), /not a host name/);
  });

  it("the CLI's --secret-host binds a --secret or --secret-file, and names one that is missing", () => {
    assert.deepEqual(secretFlags(["A=1"], ["B=./b"], ["A=api.test,b.test", "A=c.test"]), [
      { name: "A", value: "1", hosts: ["api.test", "b.test", "c.test"] },
      { name: "B", file_path: "./b" },
    ]);
    assert.throws(
      () => secretFlags([], [], ["C=api.test"]),
      /--secret-host names C, which no --secret or --secret-file gives/,
    );
    assert.throws(() => secretFlags(["A=1"], [], ["A="]), /--secret-host must be NAME=HOST/);
  });
});

describe("the host's proxy (host_proxy)", () => {
  it("reads the host's variables, upper case first, and names what is missing or wrong", () => {
    assert.deepEqual(
      readHostProxy({ https_proxy: "http://p:3128", HTTPS_PROXY: "http://P:8080", no_proxy: "a.test" }),
      {
        https: "http://P:8080",
        no_proxy: "a.test",
      },
    );
    assert.deepEqual(readHostProxy({ http_proxy: "proxy.corp:3128" }), { http: "proxy.corp:3128" });
    const refused = (env: NodeJS.ProcessEnv, pattern: RegExp) =>
      assert.throws(
        () => readHostProxy(env),
        (err: PyroError) => err.code === "INVALID_ARGUMENT" && pattern.test(err.message),
      );
    refused({}, /no HTTPS_PROXY or HTTP_PROXY/);
    refused({ HTTPS_PROXY: "socks5://p:1080" }, /socks5 proxy; pyro hands on http:\/\/ and https:\/\/ proxies only/);
    refused({ HTTPS_PROXY: "http://[bad" }, /HTTPS_PROXY is not a proxy URL/);
  });

  it("refuses it without a network, and a loopback proxy where the sandbox itself would dial it", () => {
    const env = { HTTPS_PROXY: "http://user:pw@127.0.0.1:3128" };
    assert.throws(() => hostProxyAtCreate("off", env), /needs a network/);
    assert.throws(
      () => hostProxyAtCreate("egress", env),
      (err: PyroError) => /http:\/\/user:\*\*\*@127\.0\.0\.1:3128.* on its loopback/.test(err.message),
    );
    // Under allowlist the gateway on the host dials it: loopback is fine there.
    assert.deepEqual(hostProxyAtCreate("allowlist", env), { https: env.HTTPS_PROXY });
    assert.deepEqual(maskedHostProxy({ https: env.HTTPS_PROXY, no_proxy: "x" }), {
      https: "http://user:***@127.0.0.1:3128/",
      no_proxy: "x",
    });
    assert.deepEqual(proxyEnvironment({ https: "http://p:1", no_proxy: "a" }), {
      https_proxy: "http://p:1",
      HTTPS_PROXY: "http://p:1",
      no_proxy: "a",
      NO_PROXY: "a",
    });
  });

  it("tunnels through a real proxy with CONNECT and its credentials, skips NO_PROXY names, and says why it failed", async () => {
    const seen: string[] = [];
    const target = createServer((socket) => socket.end("from the target\n"));
    const proxy = createServer((client) => {
      client.once("data", (head: Buffer) => {
        const text = head.toString("latin1");
        seen.push(
          text
            .split("\r\n")
            .filter((l) => /^(CONNECT|Proxy-Authorization)/.test(l))
            .join(" | "),
        );
        if (text.startsWith("CONNECT refused.test")) return client.end("HTTP/1.1 403 Forbidden\r\n\r\n");
        const upstream = connectTcp((target.address() as { port: number }).port, "127.0.0.1", () => {
          client.write("HTTP/1.1 200 Connection established\r\n\r\n");
          upstream.pipe(client);
        });
      });
    });
    await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    try {
      const port = (proxy.address() as { port: number }).port;
      const upstream = new UpstreamProxy({ https: `http://me:s%40cret@127.0.0.1:${port}`, no_proxy: ".internal.test" });
      assert.equal(upstream.address, `127.0.0.1:${port}`);
      assert.equal(upstream.covers("pkg.example.test"), true);
      assert.equal(upstream.covers("registry.internal.test"), false);
      const socket = await upstream.connect("pkg.example.test", 443);
      const answer = await new Promise<string>((resolve) => {
        let text = "";
        socket.setEncoding("utf8").on("data", (chunk: string) => {
          text += chunk;
        });
        socket.on("end", () => resolve(text));
        socket.resume();
      });
      assert.equal(answer, "from the target\n");
      assert.deepEqual(seen, [
        `CONNECT pkg.example.test:443 HTTP/1.1 | Proxy-Authorization: Basic ${Buffer.from("me:s@cret").toString("base64")}`,
      ]);
      await assert.rejects(
        upstream.connect("refused.test", 443),
        /refused CONNECT refused\.test:443: HTTP\/1\.1 403 Forbidden/,
      );
      const gone = new UpstreamProxy({ http: "http://127.0.0.1:1" });
      await assert.rejects(
        gone.connect("a.test", 80),
        /the host's proxy 127\.0\.0\.1:1 could not be reached \(ECONNREFUSED\)/,
      );
    } finally {
      proxy.close();
      target.close();
    }
  });
});
