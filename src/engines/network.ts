// Owns the per-sandbox network both engines use for egress: a network namespace `pyro-<id>` whose
// only way out is a slirp4netns process (user-mode NAT, host loopback disabled), published ports
// through slirp4netns's JSON API socket, and the clean-up of what a dead owner left behind.
//
// Why this shape: this host's runsc refuses --network=sandbox in the root network namespace, so runsc
// joins the namespace with `nsenter --net=...` and runs with --network=host (see DESIGN.md); QEMU
// runs its user-mode network inside the namespace the same way.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { z } from "zod";
import { PyroError } from "../contract/errors.js";
import { GATEWAY_NET } from "../egress/addresses.js";
import { firewallRuleset, NFT, NFT_MISSING } from "../egress/firewall.js";
import { isRootless } from "../rootless/mode.js";
import { settlesWithin } from "../util/children.js";
import { findExecutable } from "../util/which.js";
import { unmount } from "./mounts.js";
import type { NetworkPolicy } from "./types.js";

const run = promisify(execFile);

const NETNS_DIR = "/run/netns";
const NETNS_PREFIX = "pyro-";
const SLIRP = "slirp4netns";
const TAP = "tap0";
/** slirp4netns's default address for the namespace side; host forwards land here. */
export const GUEST_ADDR = "10.0.2.100";
const READY_TIMEOUT_MS = 5_000;
const API_TIMEOUT_MS = 5_000;
const EXIT_WAIT_MS = 2_000;
/** Enough of slirp4netns's stderr to explain a failed start, bounded so a chatty slirp cannot grow us. */
const STDERR_KEEP = 4_096;
/** sockaddr_un.sun_path is 108 bytes including the terminating NUL. */
const MAX_SOCKET_PATH = 107;
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export interface SandboxNetwork {
  nsName: string;
  nsPath: string;
  slirpPid: number;
  apiSocket: string;
  /** Publishes 127.0.0.1:hostPort on the host to guestPort in the namespace; hostPort 0 picks a free port. */
  addHostForward(hostPort: number, guestPort: number): Promise<{ id: number; host_port: number }>;
  removeHostForward(id: number): Promise<void>;
  /** Stops slirp4netns, deletes the namespace and removes the API socket; idempotent. */
  teardown(): Promise<void>;
}

export interface NetworkFiles {
  nsName: string;
  nsPath: string;
  apiSocket: string;
  pidFile: string;
}

/** Names every host object of one sandbox's network; rejects ids that could escape a path or a name. */
/** The name of a sandbox's network namespace under root (`ip netns`). */
export function netnsName(id: string): string {
  return `${NETNS_PREFIX}${id}`;
}

export function networkFiles(id: string, runDir: string): NetworkFiles {
  if (!SAFE_ID.test(id)) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `sandbox id ${JSON.stringify(id)} cannot name a network namespace: use 1-64 letters, digits, '.', '_' or '-'`,
    );
  }
  const nsName = netnsName(id);
  return {
    nsName,
    // Rootless pyro cannot write /run/netns; its namespaces are bind-mounted on a file in the run
    // dir instead, visible to every pyro process of the user through their shared mount namespace.
    nsPath: isRootless() ? join(runDir, "netns") : join(NETNS_DIR, nsName),
    apiSocket: join(runDir, "slirp.sock"),
    pidFile: join(runDir, "slirp.pid"),
  };
}

/** fd 3 is the ready pipe and fd 4 the exit pipe, matching the spawn stdio layout below. */
export function slirp4netnsArgs(nsPath: string, apiSocket: string): string[] {
  return [
    "--configure",
    "--mtu=65520",
    "--disable-host-loopback",
    // Not --enable-sandbox: it unshares a mount namespace whose unmounts propagate back through
    // /run/netns (a shared mount) and detach every network namespace on the host.
    "--enable-seccomp",
    "--netns-type=path",
    "--api-socket",
    apiSocket,
    "--ready-fd=3",
    "--exit-fd=4",
    nsPath,
    TAP,
  ];
}

export function nsenterPrefix(net: Pick<SandboxNetwork, "nsPath">): string[] {
  return ["nsenter", `--net=${net.nsPath}`, "--"];
}

// ---- slirp4netns API: one JSON request per connection, the reply is everything until close ----

export type SlirpRequest =
  | {
      execute: "add_hostfwd";
      arguments: { proto: "tcp"; host_addr: string; host_port: number; guest_addr: string; guest_port: number };
    }
  | { execute: "remove_hostfwd"; arguments: { id: number } }
  | { execute: "list_hostfwd" };

export function addHostfwdRequest(hostPort: number, guestPort: number): SlirpRequest {
  return {
    execute: "add_hostfwd",
    arguments: {
      proto: "tcp",
      host_addr: "127.0.0.1",
      host_port: hostPort,
      guest_addr: GUEST_ADDR,
      guest_port: guestPort,
    },
  };
}

export function removeHostfwdRequest(id: number): SlirpRequest {
  return { execute: "remove_hostfwd", arguments: { id } };
}

export function encodeSlirpRequest(request: SlirpRequest): string {
  return JSON.stringify(request);
}

const SlirpReply = z.union([
  z.object({ return: z.record(z.string(), z.unknown()) }),
  z.object({ error: z.object({ desc: z.string() }) }),
  // slirp4netns 1.2.0 answers list_hostfwd without the "return" wrapper.
  z.object({ entries: z.array(z.unknown()) }),
]);

export type DecodedSlirpReply = { ok: true; value: Record<string, unknown> } | { ok: false; desc: string };

/** Separates slirp's own refusals (ok: false) from replies pyro cannot read (thrown). */
export function decodeSlirpReply(operation: string, text: string): DecodedSlirpReply {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new PyroError(
      "INTERNAL",
      `slirp4netns answered ${operation} with non-JSON ${JSON.stringify(text.slice(0, 200))}`,
    );
  }
  const parsed = SlirpReply.safeParse(json);
  if (!parsed.success) {
    throw new PyroError("INTERNAL", `slirp4netns answered ${operation} with an unexpected reply ${text.slice(0, 200)}`);
  }
  const reply = parsed.data;
  if ("error" in reply) return { ok: false, desc: reply.error.desc };
  if ("return" in reply) return { ok: true, value: reply.return };
  return { ok: true, value: reply };
}

const AddHostfwdReturn = z.object({ id: z.number().int().nonnegative() });

export function addHostfwdId(value: Record<string, unknown>): number {
  const parsed = AddHostfwdReturn.safeParse(value);
  if (!parsed.success) {
    throw new PyroError("INTERNAL", `slirp4netns answered add_hostfwd without a forward id: ${JSON.stringify(value)}`);
  }
  return parsed.data.id;
}

export function portInUseError(hostPort: number): PyroError {
  return new PyroError(
    "PORT_UNAVAILABLE",
    `host port ${hostPort} is already in use on 127.0.0.1; choose another --publish host port or omit it`,
  );
}

/** Sends one request over the API socket and returns the raw reply text. */
async function slirpCall(apiSocket: string, request: SlirpRequest): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(apiSocket);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new PyroError(
          "SANDBOX_NOT_RUNNING",
          `slirp4netns did not answer ${request.execute} within ${API_TIMEOUT_MS} ms`,
        ),
      );
    }, API_TIMEOUT_MS);
    socket.on("connect", () => socket.write(encodeSlirpRequest(request)));
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const gone = err.code === "ENOENT" || err.code === "ECONNREFUSED";
      reject(
        new PyroError(
          gone ? "SANDBOX_NOT_RUNNING" : "INTERNAL",
          gone
            ? "the sandbox network is gone (slirp4netns is not running); restart the sandbox"
            : `talking to slirp4netns at ${apiSocket} failed: ${err.message}`,
        ),
      );
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("utf8"));
    });
  });
}

// ---- host helpers ----

/** Binds 127.0.0.1:port for a moment: slirp's own refusal ("slirp_add_hostfwd failed") does not say why. */
export function probeHostPort(port: number): Promise<{ free: true; port: number } | { free: false }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE" || err.code === "EACCES") resolve({ free: false });
      else reject(err);
    });
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => {
      const address = server.address();
      const bound = typeof address === "object" && address ? address.port : port;
      server.close(() => resolve({ free: true, port: bound }));
    });
  });
}

async function ip(args: string[]): Promise<void> {
  try {
    await run("ip", args, { timeout: 5_000 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") {
      throw new PyroError(
        "HOST_REQUIREMENT_MISSING",
        "the ip command is missing; install iproute2 (apt-get install iproute2)",
      );
    }
    throw new Error(`ip ${args.join(" ")}: ${(e.stderr ?? e.message).trim()}`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** True while the pid runs (a zombie counts as gone: nobody may reap a detached slirp4netns). */
function pidRunning(pid: number): Promise<boolean> {
  return readFile(`/proc/${pid}/stat`, "utf8").then(
    (text) => {
      const state = text.slice(text.lastIndexOf(")") + 2, text.lastIndexOf(")") + 3);
      return state !== "Z" && state !== "X";
    },
    () => false,
  );
}

async function waitPidGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (await pidRunning(pid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** Guards against pid reuse: only a slirp4netns serving this very namespace may be killed. */
async function isOurSlirp(pid: number, nsPath: string): Promise<boolean> {
  try {
    const comm = (await readFile(`/proc/${pid}/comm`, "utf8")).trim();
    const argv = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
    return comm === SLIRP && argv.includes(nsPath) && (await pidRunning(pid));
  } catch {
    return false;
  }
}

async function killSlirp(pid: number): Promise<void> {
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  if (await waitPidGone(pid, EXIT_WAIT_MS)) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {}
  await waitPidGone(pid, EXIT_WAIT_MS);
}

async function addNetns(files: NetworkFiles): Promise<void> {
  if (!isRootless()) return ip(["netns", "add", files.nsName]);
  await writeFile(files.nsPath, "");
  try {
    await run("unshare", [`--net=${files.nsPath}`, "true"], { timeout: 5_000 });
  } catch (err) {
    throw new Error(`unshare --net=${files.nsPath}: ${((err as { stderr?: string }).stderr ?? String(err)).trim()}`);
  }
}

/** addNetns for a sandbox: a failure says what to do when a crashed sandbox left the name taken. */
async function addSandboxNetns(files: NetworkFiles): Promise<void> {
  try {
    await addNetns(files);
  } catch (err) {
    if (err instanceof PyroError) throw err;
    throw new PyroError(
      "SANDBOX_START_FAILED",
      `could not create network namespace ${files.nsName}: ${(err as Error).message}; ` +
        "if a previous sandbox with this id crashed, run pyro doctor --repair",
    );
  }
}

async function deleteNetns(files: NetworkFiles): Promise<boolean> {
  if (!isRootless()) {
    if (!(await exists(join(NETNS_DIR, files.nsName)))) return false;
    await ip(["netns", "delete", files.nsName]);
    return true;
  }
  const mounted = await unmount(files.nsPath);
  await rm(files.nsPath, { force: true });
  return mounted;
}

/** Root's named namespaces; a rootless user's live in run dirs and die with the user's namespace. */
export async function listPyroNetns(): Promise<string[]> {
  if (isRootless()) return [];
  try {
    return (await readdir(NETNS_DIR)).filter((name) => name.startsWith(NETNS_PREFIX)).sort();
  } catch {
    return [];
  }
}

// ---- create / teardown ----

interface SlirpProcess {
  child: ChildProcess;
  /** Settles when the process has exited (its pipes may outlive it in a forked helper). */
  exited: Promise<void>;
  /** Resolves when slirp4netns has configured tap0 and its API socket listens. */
  ready: Promise<void>;
}

function startSlirp(files: NetworkFiles): SlirpProcess {
  // detached: a Ctrl-C to our process group must not kill slirp before we tear down in order;
  // it still dies with us because the exit pipe (fd 4) closes when this process dies, however it dies.
  const child = spawn(SLIRP, slirp4netnsArgs(files.nsPath, files.apiSocket), {
    stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"],
    detached: true,
  });
  const [, , stderr, readyPipe, exitPipe] = child.stdio as unknown as [null, null, Socket, Socket, Socket];
  let stderrText = "";
  stderr.setEncoding("utf8");
  // Keep draining stderr for the process's whole life so a full pipe never blocks slirp.
  stderr.on("data", (text: string) => {
    stderrText = (stderrText + text).slice(-STDERR_KEEP);
  });
  for (const pipe of [stderr, readyPipe, exitPipe]) pipe.on("error", () => {});
  const stderrEnded = new Promise<void>((r) => stderr.once("close", () => r()));
  const exited = new Promise<void>((r) => {
    child.once("exit", () => r());
    // A failed spawn has no process to wait for.
    child.once("error", () => {
      if (child.pid === undefined) r();
    });
  });

  const ready = new Promise<void>((resolve, reject) => {
    let settled = false;
    const fail = async (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      // The reason is usually slirp's last stderr line, which may still be in flight at exit.
      await settlesWithin(stderrEnded, 200);
      const detail = stderrText.trim();
      reject(
        new PyroError(
          "SANDBOX_START_FAILED",
          `slirp4netns did not set up the sandbox network (${why})${detail ? `: ${detail}` : ""}; ` +
            "check that slirp4netns works and /dev/net/tun exists (pyro doctor)",
        ),
      );
    };
    const timer = setTimeout(() => void fail(`not ready within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
    child.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT" && !settled) {
        settled = true;
        clearTimeout(timer);
        reject(
          new PyroError("HOST_REQUIREMENT_MISSING", "slirp4netns is missing; install it (apt-get install slirp4netns)"),
        );
        return;
      }
      void fail(err.message);
    });
    child.once("exit", (code, signal) => void fail(`exited early with ${signal ?? `code ${code}`}`));
    readyPipe.once("data", () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      readyPipe.destroy();
      // From here on slirp must not keep the owner's event loop alive; the exit pipe stays open.
      child.unref();
      stderr.unref();
      exitPipe.unref();
      resolve();
    });
  });
  // The creator may bail out before awaiting readiness; a late rejection must not crash the owner.
  ready.catch(() => {});
  return { child, exited, ready };
}

/** The namespace's setup commands when the egress gateway is its only way out: no route anywhere,
 * every IPv4 address local on lo (so whatever the guest dials reaches the gateway's sockets), the
 * resolver's address among them, and the table that turns what no gateway socket listens for
 * towards the gateway's discard port, so it is logged too (firewall.ts). */
export function gatewayNamespaceCommands(): string[][] {
  return [
    ["ip", "link", "set", "lo", "up"],
    ["ip", "addr", "add", `${GATEWAY_NET.resolver}/${GATEWAY_NET.prefix}`, "dev", "lo"],
    ["ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo"],
    [NFT, firewallRuleset()],
  ];
}

/**
 * A namespace with no way out of its own (network policy allowlist): the supervisor's egress
 * gateway binds its sockets there and is the only thing that connects anywhere.
 */
export async function createGatewayNetwork(id: string, runDir: string): Promise<SandboxNetwork> {
  if (NFT === "nft" && !(await findExecutable("nft"))) throw new PyroError("SANDBOX_START_FAILED", NFT_MISSING);
  const files = networkFiles(id, runDir);
  await mkdir(runDir, { recursive: true });
  await addSandboxNetns(files);
  try {
    for (const [command, ...args] of gatewayNamespaceCommands().map((c) => [...nsenterPrefix(files), ...c])) {
      await run(command!, args, { timeout: 5_000 });
    }
  } catch (err) {
    await deleteNetns(files).catch(() => {});
    const e = err as Error & { stderr?: string };
    throw new PyroError(
      "SANDBOX_START_FAILED",
      `setting up network namespace ${files.nsName} failed: ${(e.stderr ?? e.message).trim()}`,
    );
  }
  return new GatewayNetwork(files);
}

class GatewayNetwork implements SandboxNetwork {
  readonly nsName: string;
  readonly nsPath: string;
  readonly apiSocket = "";
  readonly slirpPid = 0;
  private tearingDown: Promise<boolean> | undefined;

  constructor(private readonly files: NetworkFiles) {
    this.nsName = files.nsName;
    this.nsPath = files.nsPath;
  }

  addHostForward(): Promise<{ id: number; host_port: number }> {
    return Promise.reject(
      new PyroError(
        "NETWORK_POLICY_DENIED",
        "network policy allowlist publishes no ports; use egress+published-ports to publish services",
      ),
    );
  }

  removeHostForward(): Promise<void> {
    return Promise.resolve();
  }

  async teardown(): Promise<void> {
    this.tearingDown ??= deleteNetns(this.files);
    await this.tearingDown;
  }
}

/** The network a sandbox of this policy runs in: none for off, the gateway's closed namespace for
 * allowlist, slirp4netns egress otherwise. */
export function networkFor(spec: {
  id: string;
  runDir: string;
  network: NetworkPolicy;
}): Promise<SandboxNetwork | undefined> {
  if (spec.network === "off") return Promise.resolve(undefined);
  if (spec.network === "allowlist") return createGatewayNetwork(spec.id, spec.runDir);
  return createSandboxNetwork(spec.id, spec.runDir);
}

export async function createSandboxNetwork(id: string, runDir: string): Promise<SandboxNetwork> {
  const files = networkFiles(id, runDir);
  if (Buffer.byteLength(files.apiSocket) > MAX_SOCKET_PATH) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `the slirp4netns API socket path ${files.apiSocket} is longer than ${MAX_SOCKET_PATH} bytes; use a shorter PYRO_STATE_DIR`,
    );
  }
  await mkdir(runDir, { recursive: true });
  await rm(files.apiSocket, { force: true });
  await addSandboxNetns(files);
  let slirp: SlirpProcess | undefined;
  try {
    slirp = startSlirp(files);
    // Recorded before readiness so that a crash while waiting still leaves a pid to clean up.
    if (slirp.child.pid !== undefined) await writeFile(files.pidFile, `${slirp.child.pid}\n`);
    await slirp.ready;
    // --configure already brings lo up; this keeps that true if a slirp4netns version stops doing so.
    const [nsenter, ...loUp] = [...nsenterPrefix(files), "ip", "link", "set", "lo", "up"];
    await run(nsenter!, loUp, { timeout: 5_000 });
  } catch (err) {
    if (slirp) {
      slirp.child.kill("SIGKILL");
      await settlesWithin(slirp.exited, EXIT_WAIT_MS);
    }
    await deleteNetns(files).catch(() => {});
    await rm(files.apiSocket, { force: true });
    await rm(files.pidFile, { force: true });
    throw err instanceof PyroError
      ? err
      : new PyroError(
          "SANDBOX_START_FAILED",
          `setting up network namespace ${files.nsName} failed: ${(err as Error).message}`,
        );
  }
  return new SlirpNetwork(files, slirp);
}

class SlirpNetwork implements SandboxNetwork {
  readonly nsName: string;
  readonly nsPath: string;
  readonly apiSocket: string;
  readonly slirpPid: number;
  private tearingDown: Promise<void> | undefined;

  constructor(
    private readonly files: NetworkFiles,
    private readonly slirp: SlirpProcess,
  ) {
    this.nsName = files.nsName;
    this.nsPath = files.nsPath;
    this.apiSocket = files.apiSocket;
    this.slirpPid = slirp.child.pid!;
  }

  private async call(request: SlirpRequest): Promise<DecodedSlirpReply> {
    if (this.tearingDown) throw new PyroError("SANDBOX_NOT_RUNNING", `the network of ${this.nsName} was torn down`);
    return decodeSlirpReply(request.execute, await slirpCall(this.apiSocket, request));
  }

  async addHostForward(hostPort: number, guestPort: number): Promise<{ id: number; host_port: number }> {
    if (!Number.isInteger(hostPort) || hostPort < 0 || hostPort > 65535) {
      throw new PyroError(
        "INVALID_ARGUMENT",
        `host port ${hostPort} is not a port number; use 1-65535, or 0 to pick one`,
      );
    }
    if (!Number.isInteger(guestPort) || guestPort < 1 || guestPort > 65535) {
      throw new PyroError("INVALID_ARGUMENT", `guest port ${guestPort} is not a port number; use 1-65535`);
    }
    // slirp4netns rejects host_port 0, so pyro picks the port; another process may take it between
    // the probe and slirp's bind, hence a few attempts when the caller let us choose.
    const attempts = hostPort === 0 ? 5 : 1;
    for (let attempt = 1; ; attempt++) {
      const probe = await probeHostPort(hostPort);
      if (!probe.free) throw portInUseError(hostPort);
      const reply = await this.call(addHostfwdRequest(probe.port, guestPort));
      if (reply.ok) return { id: addHostfwdId(reply.value), host_port: probe.port };
      if (!/slirp_add_hostfwd failed/.test(reply.desc)) {
        throw new PyroError("INTERNAL", `slirp4netns refused to publish port ${probe.port}: ${reply.desc}`);
      }
      if (attempt >= attempts) throw portInUseError(probe.port);
    }
  }

  async removeHostForward(id: number): Promise<void> {
    const reply = await this.call(removeHostfwdRequest(id));
    if (!reply.ok) {
      throw new PyroError(
        "INVALID_ARGUMENT",
        `no published port with forward id ${id} in ${this.nsName} (${reply.desc})`,
      );
    }
  }

  teardown(): Promise<void> {
    this.tearingDown ??= this.doTeardown();
    return this.tearingDown;
  }

  private async doTeardown(): Promise<void> {
    const { child, exited } = this.slirp;
    // Closing the exit pipe is slirp's own shutdown path; SIGTERM covers a wedged event loop.
    child.stdio[4]?.destroy();
    child.kill("SIGTERM");
    if (!(await settlesWithin(exited, EXIT_WAIT_MS))) {
      child.kill("SIGKILL");
      await settlesWithin(exited, EXIT_WAIT_MS);
    }
    await deleteNetns(this.files);
    await rm(this.files.apiSocket, { force: true });
    await rm(this.files.pidFile, { force: true });
  }
}

export async function cleanupSandboxNetwork(id: string, runDir: string): Promise<string[]> {
  const files = networkFiles(id, runDir);
  const cleaned: string[] = [];
  let pid = Number.NaN;
  try {
    pid = Number.parseInt(await readFile(files.pidFile, "utf8"), 10);
  } catch {}
  if (Number.isInteger(pid) && pid > 0 && (await isOurSlirp(pid, files.nsPath))) {
    await killSlirp(pid);
    cleaned.push(`slirp4netns pid ${pid}`);
  }
  if (await deleteNetns(files)) cleaned.push(`network namespace ${files.nsName}`);
  if (await exists(files.apiSocket)) {
    await rm(files.apiSocket, { force: true });
    cleaned.push(`socket ${files.apiSocket}`);
  }
  await rm(files.pidFile, { force: true });
  return cleaned;
}
