// Owns the test-side network fixtures: an "outside" network namespace joined to the host by a veth
// pair (a stand-in for the internet, since this machine has none), tiny TCP servers, a TCP probe
// that runs inside a namespace or a sandbox, and the leak report the network tests assert on.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { connect, createServer, type Server } from "node:net";
import { promisify } from "node:util";
import { listPyroNetns } from "../../src/engines/network.js";

const run = promisify(execFile);

/** Host-side veth names start with this, so a leak report can find them. */
export const VETH_PREFIX = "pyt-";
export const OUTSIDE_PREFIX = "pyro-test-outside-";

async function ip(args: string[]): Promise<string> {
  const { stdout } = await run("ip", args, { timeout: 5_000 });
  return stdout;
}

// ---- TCP servers: each greets with a fixed line and closes, so a probe proves it reached *that* server ----

/** Source of a server that listens on 0.0.0.0 (or the port in argv[2]), prints its port, greets and closes. */
export const GREETER_SOURCE = `
const net = require("node:net");
const greeting = process.argv[1];
const port = Number(process.argv[2] ?? 0);
const server = net.createServer((s) => { s.on("error", () => {}); s.end(greeting + "\\n"); });
server.listen(port, "0.0.0.0", () => console.log(JSON.stringify({ port: server.address().port })));
`;

export interface RunningServer {
  port: number;
  stop(): Promise<void>;
}

/** Starts GREETER_SOURCE as a process (argv lets the caller wrap it in nsenter or runsc) and waits for its port. */
export function startGreeterProcess(argvPrefix: string[], greeting: string, port = 0): Promise<RunningServer> {
  const argv = [...argvPrefix, "node", "-e", GREETER_SOURCE, greeting, String(port)];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  return waitForPort(child, `greeter ${greeting}`);
}

export function waitForPort(child: ChildProcess, what: string): Promise<RunningServer> {
  const exited = new Promise<void>((r) => child.once("close", () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  };
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`${what} did not report its port within 15 s: ${err}`));
    }, 15_000);
    child.stderr?.on("data", (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (!line) return;
      clearTimeout(timer);
      resolve({ port: (JSON.parse(line) as { port: number }).port, stop });
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) before reporting its port: ${err}`));
    });
  });
}

/** A greeter on the host's own 127.0.0.1: the thing a sandbox must NOT reach. */
export async function startHostLoopbackServer(greeting: string): Promise<RunningServer & { server: Server }> {
  const server = createServer((s) => {
    s.on("error", () => {});
    s.end(`${greeting}\n`);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("no address");
  return {
    port: address.port,
    server,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

// ---- TCP probe: connect, read the greeting, report; runs as `node -e` in a namespace or a sandbox ----

export interface ProbeTarget {
  host: string;
  port: number;
}

export type ProbeResult = { host: string; port: number } & ({ ok: true; data: string } | { ok: false; error: string });

/** Connects to every target in argv[1] (JSON) at once and prints one JSON array of results. */
export const PROBE_SOURCE = `
const net = require("node:net");
const targets = JSON.parse(process.argv[1]);
const probe = (t) => new Promise((resolve) => {
  let data = "";
  const s = net.connect({ host: t.host, port: t.port });
  const done = (r) => { clearTimeout(timer); s.destroy(); resolve({ host: t.host, port: t.port, ...r }); };
  const timer = setTimeout(() => done(data ? { ok: true, data } : { ok: false, error: "TIMEOUT" }), 3000);
  s.on("data", (c) => { data += c; });
  s.on("end", () => done({ ok: true, data }));
  s.on("error", (e) => done({ ok: false, error: e.code || e.message }));
});
Promise.all(targets.map(probe)).then((r) => console.log(JSON.stringify(r)));
`;

export function probeArgs(targets: ProbeTarget[]): string[] {
  return ["-e", PROBE_SOURCE, JSON.stringify(targets)];
}

export function parseProbeOutput(stdout: string): ProbeResult[] {
  const line = stdout.split("\n").find((l) => l.startsWith("["));
  if (!line) throw new Error(`probe printed no result: ${JSON.stringify(stdout)}`);
  return JSON.parse(line) as ProbeResult[];
}

/** Runs the probe with `nsenter --net=<nsPath>`, i.e. from inside that network namespace. */
export async function probeFromNetns(nsPath: string, targets: ProbeTarget[]): Promise<ProbeResult[]> {
  const { stdout } = await run("nsenter", [`--net=${nsPath}`, "--", "node", ...probeArgs(targets)], {
    timeout: 20_000,
  });
  return parseProbeOutput(stdout);
}

/** Probes from the calling (host) network namespace. */
export async function probeFromHost(target: ProbeTarget): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let data = "";
    const s = connect(target);
    const done = (r: { ok: true; data: string } | { ok: false; error: string }) => {
      clearTimeout(timer);
      s.destroy();
      resolve({ ...target, ...r });
    };
    const timer = setTimeout(() => done(data ? { ok: true, data } : { ok: false, error: "TIMEOUT" }), 3_000);
    s.on("data", (c: Buffer) => {
      data += c.toString();
    });
    s.on("end", () => done({ ok: true, data }));
    s.on("error", (e: NodeJS.ErrnoException) => done({ ok: false, error: e.code ?? e.message }));
  });
}

// ---- the "outside": a namespace on a veth link, reachable from the host's network namespace ----

export interface OutsideNamespace {
  nsName: string;
  nsPath: string;
  vethHost: string;
  /** The host's end of the link. */
  hostAddr: string;
  /** The namespace's end of the link: where the outside server listens. */
  nsAddr: string;
  server: RunningServer;
  greeting: string;
  teardown(): Promise<void>;
}

async function freeSubnetOctet(): Promise<number> {
  const used = await ip(["-4", "-o", "addr", "show"]);
  for (let i = 0; i < 50; i++) {
    const x = randomBytes(1)[0]!;
    if (!used.includes(`10.231.${x}.`)) return x;
  }
  throw new Error("no free 10.231.X.0/30 subnet for the outside namespace");
}

export async function createOutsideNamespace(): Promise<OutsideNamespace> {
  const tag = randomBytes(3).toString("hex");
  const nsName = `${OUTSIDE_PREFIX}${tag}`;
  const nsPath = `/run/netns/${nsName}`;
  const vethHost = `${VETH_PREFIX}${tag}`;
  const vethNs = `${VETH_PREFIX}${tag}n`;
  const x = await freeSubnetOctet();
  const hostAddr = `10.231.${x}.1`;
  const nsAddr = `10.231.${x}.2`;
  const greeting = `pyro-outside-${tag}`;
  let server: RunningServer | undefined;
  const teardown = async () => {
    await server?.stop();
    await ip(["netns", "delete", nsName]).catch(() => {});
    // Deleting the namespace destroys its veth end and with it the pair; this is for a half-built setup.
    await ip(["link", "delete", vethHost]).catch(() => {});
  };
  try {
    await ip(["netns", "add", nsName]);
    await ip(["link", "add", vethHost, "type", "veth", "peer", "name", vethNs]);
    await ip(["link", "set", vethNs, "netns", nsName]);
    await ip(["addr", "add", `${hostAddr}/30`, "dev", vethHost]);
    await ip(["link", "set", vethHost, "up"]);
    await ip(["-n", nsName, "addr", "add", `${nsAddr}/30`, "dev", vethNs]);
    await ip(["-n", nsName, "link", "set", vethNs, "up"]);
    await ip(["-n", nsName, "link", "set", "lo", "up"]);
    server = await startGreeterProcess(["nsenter", `--net=${nsPath}`, "--"], greeting);
  } catch (err) {
    await teardown();
    throw err;
  }
  return { nsName, nsPath, vethHost, hostAddr, nsAddr, server, greeting, teardown };
}

// ---- leak report ----

/** Live slirp4netns processes whose command line mentions `marker` (zombies are already gone). */
export async function slirpProcesses(marker: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const comm = (await readFile(`/proc/${entry}/comm`, "utf8")).trim();
      if (comm !== "slirp4netns") continue;
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8");
      if (cmdline.includes(marker)) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

/**
 * What this test run left behind: namespaces named with its prefixes, slirp4netns processes that
 * serve one of them, and host veth ends. Scoped to this run so parallel runs elsewhere do not count.
 */
export async function leftovers(sandboxNsPrefix: string): Promise<string[]> {
  const found: string[] = [];
  for (const ns of await listPyroNetns()) {
    if (ns.startsWith(sandboxNsPrefix) || ns.startsWith(OUTSIDE_PREFIX)) found.push(`netns ${ns}`);
  }
  for (const pid of await slirpProcesses(`/run/netns/${sandboxNsPrefix}`)) found.push(`slirp4netns pid ${pid}`);
  for (const line of (await ip(["-o", "link", "show"])).split("\n")) {
    const name = line.split(":")[1]?.trim().split("@")[0];
    if (name?.startsWith(VETH_PREFIX)) found.push(`veth ${name}`);
  }
  return found;
}

/** Names under /run/netns that are still mounted (a name whose bind mount was detached is useless). */
export async function mountedNetns(): Promise<string[]> {
  const mountinfo = await readFile("/proc/self/mountinfo", "utf8");
  return mountinfo
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .filter((mountPoint) => mountPoint.startsWith("/run/netns/"))
    .map((mountPoint) => mountPoint.slice("/run/netns/".length));
}

/** Polls until `pid` no longer runs (a zombie counts as gone); returns how long it took, or -1. */
export async function waitGone(pid: number, ms: number): Promise<number> {
  const start = Date.now();
  for (;;) {
    let alive = false;
    try {
      const stat = await readFile(`/proc/${pid}/stat`, "utf8");
      alive = !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
    } catch {}
    if (!alive) return Date.now() - start;
    if (Date.now() - start > ms) return -1;
    await new Promise((r) => setTimeout(r, 20));
  }
}
