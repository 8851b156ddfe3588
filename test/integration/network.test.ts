// Proves the gvisor engine's network claim on the real host: a sandbox namespace with slirp4netns
// reaches the outside but not the host's loopback, from a plain process and from inside gVisor;
// published ports work; a crashed owner leaves nothing slirp4netns-shaped running; nothing leaks.
// Needs root, ip, nsenter, slirp4netns and runsc. Traffic only goes to loopback and namespaces made here.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { access, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { PyroError } from "../../src/contract/errors.js";
import {
  cleanupSandboxNetwork,
  createSandboxNetwork,
  listPyroNetns,
  nsenterPrefix,
  type SandboxNetwork,
} from "../../src/engines/network.js";
import {
  createOutsideNamespace,
  GREETER_SOURCE,
  leftovers,
  mountedNetns,
  type OutsideNamespace,
  type ProbeResult,
  parseProbeOutput,
  probeArgs,
  probeFromHost,
  probeFromNetns,
  type RunningServer,
  startGreeterProcess,
  startHostLoopbackServer,
  waitForPort,
  waitGone,
} from "../helpers/netns.js";

const run = promisify(execFile);
const NETWORK_MODULE = fileURLToPath(new URL("../../src/engines/network.ts", import.meta.url));

// Ids of this run share a prefix so leak checks ignore other runs on the same machine.
const RUN_TAG = randomBytes(3).toString("hex");
const ID_PREFIX = `nt${RUN_TAG}-`;
const NS_PREFIX = `pyro-${ID_PREFIX}`;
let idCounter = 0;
const nextId = () => `${ID_PREFIX}${idCounter++}`;

// /tmp keeps runDir/slirp.sock well under the 107-byte Unix socket path limit.
let tmpRoot = "";
const opened: SandboxNetwork[] = [];
let outside: OutsideNamespace;

async function newNetwork(): Promise<{ net: SandboxNetwork; id: string; runDir: string }> {
  const id = nextId();
  const runDir = join(tmpRoot, id);
  const net = await createSandboxNetwork(id, runDir);
  opened.push(net);
  return { net, id, runDir };
}

function byTarget(results: ProbeResult[], host: string, port: number): ProbeResult {
  const found = results.find((r) => r.host === host && r.port === port);
  assert.ok(found, `no probe result for ${host}:${port}`);
  return found;
}

function assertUnreachable(result: ProbeResult, greeting: string): void {
  assert.equal(result.ok, false, `${result.host}:${result.port} should be unreachable, got ${JSON.stringify(result)}`);
  assert.ok(!JSON.stringify(result).includes(greeting));
}

function assertReached(result: ProbeResult, greeting: string): void {
  assert.deepEqual(result, { host: result.host, port: result.port, ok: true, data: `${greeting}\n` });
}

before(async () => {
  tmpRoot = await mkdtemp("/tmp/pyro-nt-");
  outside = await createOutsideNamespace();
});

afterEach(async () => {
  for (const net of opened.splice(0)) await net.teardown();
  const left = (await leftovers(NS_PREFIX)).filter(
    (l) => l !== `netns ${outside.nsName}` && l !== `veth ${outside.vethHost}`,
  );
  assert.deepEqual(left, [], "a test left network state behind");
});

after(async () => {
  await outside?.teardown();
  await rm(tmpRoot, { recursive: true, force: true });
  assert.deepEqual(await leftovers(NS_PREFIX), [], "the suite left network state behind");
});

describe("sandbox network namespace (plain process via nsenter)", () => {
  test("reaches the outside but neither the host's 127.0.0.1 nor slirp's host alias 10.0.2.2", async () => {
    const host = await startHostLoopbackServer("pyro-host-loopback");
    try {
      // Controls: from the host both servers answer, so a failure below is the sandbox's doing.
      assertReached(await probeFromHost({ host: "127.0.0.1", port: host.port }), "pyro-host-loopback");
      assertReached(await probeFromHost({ host: outside.nsAddr, port: outside.server.port }), outside.greeting);

      const { net } = await newNetwork();
      assert.equal(net.nsPath, `/run/netns/${net.nsName}`);
      assert.ok((await listPyroNetns()).includes(net.nsName));
      const results = await probeFromNetns(net.nsPath, [
        { host: "127.0.0.1", port: host.port },
        { host: "10.0.2.2", port: host.port },
        { host: outside.nsAddr, port: outside.server.port },
      ]);
      assertUnreachable(byTarget(results, "127.0.0.1", host.port), "pyro-host-loopback");
      assertUnreachable(byTarget(results, "10.0.2.2", host.port), "pyro-host-loopback");
      assertReached(byTarget(results, outside.nsAddr, outside.server.port), outside.greeting);
    } finally {
      await host.stop();
    }
  });

  test("known limit: a host service bound to 0.0.0.0 is reachable through the host's other addresses", async () => {
    // --disable-host-loopback blocks 127.0.0.0/8 only; slirp connects from the host's namespace, so
    // any non-loopback host address (here the outside link's host end) reaches wildcard listeners.
    const wildcard = await startGreeterProcess([], "pyro-host-wildcard");
    try {
      const { net } = await newNetwork();
      const [result] = await probeFromNetns(net.nsPath, [{ host: outside.hostAddr, port: wildcard.port }]);
      assertReached(result!, "pyro-host-wildcard");
    } finally {
      await wildcard.stop();
    }
  });

  test("starting slirp4netns leaves every other network namespace on the host mounted", async () => {
    const before = await mountedNetns();
    assert.ok(before.includes(outside.nsName));
    const { net } = await newNetwork();
    const now = await mountedNetns();
    assert.ok(now.includes(net.nsName));
    // Others' namespaces may come and go meanwhile; ours must not have been detached.
    assert.ok(now.includes(outside.nsName), "a slirp4netns start detached the outside namespace");
  });

  test("lo is up inside the namespace and tap0 has slirp's default guest address", async () => {
    const { net } = await newNetwork();
    const { stdout } = await run("ip", ["-n", net.nsName, "-o", "-4", "addr", "show"]);
    assert.match(stdout, /\blo\b.*inet 127\.0\.0\.1\/8/);
    assert.match(stdout, /\btap0\b.*inet 10\.0\.2\.100\/24/);
  });
});

// ---- gVisor: the same facts from inside a real runsc sandbox joined to the namespace ----

/** A bundle whose root is empty except for the host's /usr (read-only): enough for /usr/bin/node. */
async function makeBundle(dir: string, args: string[]): Promise<string> {
  const rootfs = join(dir, "rootfs");
  for (const d of ["usr", "proc", "dev", "sys", "tmp"]) await mkdir(join(rootfs, d), { recursive: true });
  for (const link of ["bin", "lib", "lib64"]) await symlink(`usr/${link}`, join(rootfs, link));
  const spec = {
    ociVersion: "1.0.2",
    process: { terminal: false, user: { uid: 0, gid: 0 }, args, env: ["PATH=/usr/bin:/bin"], cwd: "/" },
    root: { path: "rootfs", readonly: true },
    hostname: "pyro-net-test",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/tmp", type: "tmpfs", source: "tmpfs" },
      { destination: "/usr", type: "bind", source: "/usr", options: ["rbind", "ro"] },
    ],
    // No "network" namespace entry: with --network=host, runsc would create a fresh empty namespace
    // for it instead of using the one nsenter put it in (verified: the sandbox then has no tap0).
    linux: { namespaces: [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }] },
  };
  await writeFile(join(dir, "config.json"), JSON.stringify(spec));
  return dir;
}

function runscArgv(net: SandboxNetwork, runscRoot: string, bundle: string, id: string): string[] {
  return [...nsenterPrefix(net), "runsc", "--root", runscRoot, "--network=host", "run", "--bundle", bundle, id];
}

async function runscDelete(runscRoot: string, id: string): Promise<void> {
  await run("runsc", ["--root", runscRoot, "delete", "--force", id], { timeout: 10_000 }).catch(() => {});
}

describe("sandbox network namespace (inside gVisor)", () => {
  test("runsc --network=host in the namespace reaches the outside but not the host's loopback", async () => {
    const host = await startHostLoopbackServer("pyro-host-loopback");
    const { net, id, runDir } = await newNetwork();
    const runscRoot = join(runDir, "runsc");
    const targets = [
      { host: "127.0.0.1", port: host.port },
      { host: "10.0.2.2", port: host.port },
      { host: outside.nsAddr, port: outside.server.port },
    ];
    try {
      const bundle = await makeBundle(join(runDir, "probe"), ["/usr/bin/node", ...probeArgs(targets)]);
      const argv = runscArgv(net, runscRoot, bundle, `${id}-probe`);
      // stdout must be a pipe: under gVisor, output to a regular file gets lost.
      const { stdout } = await run(argv[0]!, argv.slice(1), { timeout: 60_000 });
      const results = parseProbeOutput(stdout);
      assertUnreachable(byTarget(results, "127.0.0.1", host.port), "pyro-host-loopback");
      assertUnreachable(byTarget(results, "10.0.2.2", host.port), "pyro-host-loopback");
      assertReached(byTarget(results, outside.nsAddr, outside.server.port), outside.greeting);
    } finally {
      await runscDelete(runscRoot, `${id}-probe`);
      await host.stop();
    }
  });

  test("a published port reaches a server listening inside gVisor", async () => {
    const { net, id, runDir } = await newNetwork();
    const runscRoot = join(runDir, "runsc");
    const bundle = await makeBundle(join(runDir, "server"), [
      "/usr/bin/node",
      "-e",
      GREETER_SOURCE,
      "pyro-in-gvisor",
      "8000",
    ]);
    const argv = runscArgv(net, runscRoot, bundle, `${id}-srv`);
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let server: RunningServer | undefined;
    try {
      server = await waitForPort(child, "greeter in gVisor");
      assert.equal(server.port, 8000);
      const fwd = await net.addHostForward(0, 8000);
      assertReached(await probeFromHost({ host: "127.0.0.1", port: fwd.host_port }), "pyro-in-gvisor");
    } finally {
      await run("runsc", ["--root", runscRoot, "kill", `${id}-srv`, "KILL"]).catch(() => {});
      await (server?.stop() ?? new Promise((r) => child.once("close", r)));
      await runscDelete(runscRoot, `${id}-srv`);
    }
  });
});

describe("published ports", () => {
  test("a server on 0.0.0.0:8000 in the namespace is reachable at 127.0.0.1:<host_port> until removed", async () => {
    const { net } = await newNetwork();
    const inside = await startGreeterProcess(nsenterPrefix(net), "pyro-inside", 8000);
    try {
      const picked = await net.addHostForward(0, 8000);
      assert.ok(picked.host_port > 0 && picked.host_port < 65536);
      assertReached(await probeFromHost({ host: "127.0.0.1", port: picked.host_port }), "pyro-inside");

      await net.removeHostForward(picked.id);
      const gone = await probeFromHost({ host: "127.0.0.1", port: picked.host_port });
      assert.deepEqual(gone, { host: "127.0.0.1", port: picked.host_port, ok: false, error: "ECONNREFUSED" });

      // An explicit port works too, and is the port reported back.
      const { port: wanted, stop } = await startHostLoopbackServer("probe-for-free-port");
      await stop();
      const explicit = await net.addHostForward(wanted, 8000);
      assert.equal(explicit.host_port, wanted);
      assert.notEqual(explicit.id, picked.id);
      assertReached(await probeFromHost({ host: "127.0.0.1", port: wanted }), "pyro-inside");
    } finally {
      await inside.stop();
    }
  });

  test("a host port already taken gives an error that names the port and what to do", async () => {
    const { net } = await newNetwork();
    const taken = await startHostLoopbackServer("pyro-taken");
    try {
      await assert.rejects(net.addHostForward(taken.port, 8000), (err: unknown) => {
        assert.ok(err instanceof PyroError);
        assert.equal(err.code, "PORT_UNAVAILABLE");
        assert.equal(
          err.message,
          `host port ${taken.port} is already in use on 127.0.0.1; choose another --publish host port or omit it`,
        );
        return true;
      });
      // The failed attempt leaves the taken port's owner alone.
      assertReached(await probeFromHost({ host: "127.0.0.1", port: taken.port }), "pyro-taken");
    } finally {
      await taken.stop();
    }
  });

  test("removing an unknown forward id is an INVALID_ARGUMENT", async () => {
    const { net } = await newNetwork();
    await assert.rejects(net.removeHostForward(4242), { code: "INVALID_ARGUMENT" });
  });
});

// ---- crash safety and clean-up ----

/** A separate owner process: creates a network, prints it, then either hangs or just returns. */
const OWNER_SOURCE = `
const { createSandboxNetwork } = await import(process.argv[1]);
const net = await createSandboxNetwork(process.argv[2], process.argv[3]);
console.log(JSON.stringify({ slirpPid: net.slirpPid, nsName: net.nsName }));
if (process.argv[4] === "hang") setInterval(() => {}, 1000);
`;

function startOwner(id: string, runDir: string, mode: "hang" | "return") {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      OWNER_SOURCE,
      pathToFileURL(NETWORK_MODULE).href,
      id,
      runDir,
      mode,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = new Promise<number | null>((r) => child.once("close", (code) => r(code)));
  const created = new Promise<{ slirpPid: number; nsName: string }>((resolve, reject) => {
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) resolve(JSON.parse(line) as { slirpPid: number; nsName: string });
    });
    child.stderr.on("data", (c: Buffer) => {
      err += c.toString();
    });
    void exited.then((code) => reject(new Error(`owner exited (${code}) before creating a network: ${err}`)));
  });
  return { child, exited, created };
}

describe("crash safety and clean-up", () => {
  test("a SIGKILLed owner's slirp4netns exits by itself within 2 s; cleanup removes the namespace", async (t) => {
    const id = nextId();
    const runDir = join(tmpRoot, id);
    const owner = startOwner(id, runDir, "hang");
    const { slirpPid, nsName } = await owner.created;
    assert.ok((await waitGone(slirpPid, 0)) === -1, "slirp4netns should run while its owner lives");

    owner.child.kill("SIGKILL");
    await owner.exited;
    const took = await waitGone(slirpPid, 2_000);
    assert.ok(took >= 0, "slirp4netns outlived its SIGKILLed owner by more than 2 s");
    t.diagnostic(`slirp4netns exited ${took} ms after its owner was SIGKILLed`);

    // The namespace is a bind mount and outlives everyone: that is cleanup's job.
    assert.ok((await listPyroNetns()).includes(nsName));
    // slirp4netns removes its own API socket when its exit pipe closes; only the namespace is left.
    const cleaned = await cleanupSandboxNetwork(id, runDir);
    assert.deepEqual(cleaned, [`network namespace ${nsName}`]);
    await assert.rejects(access(join(runDir, "slirp.sock")));
    assert.ok(!(await listPyroNetns()).includes(nsName));
    await assert.rejects(access(join(runDir, "slirp.pid")));
    assert.deepEqual(await cleanupSandboxNetwork(id, runDir), [], "a second cleanup finds nothing");
  });

  test("slirp4netns does not keep its owner alive, and dies when the owner exits normally", async () => {
    const id = nextId();
    const runDir = join(tmpRoot, id);
    const owner = startOwner(id, runDir, "return");
    const { slirpPid } = await owner.created;
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      owner.exited,
      new Promise((r) => {
        timer = setTimeout(() => r("still running"), 10_000);
      }),
    ]);
    clearTimeout(timer);
    if (code === "still running") owner.child.kill("SIGKILL");
    assert.equal(code, 0, "the owner should exit on its own once its work is done");
    assert.ok((await waitGone(slirpPid, 2_000)) >= 0);
    await cleanupSandboxNetwork(id, runDir);
  });

  test("cleanup of a live leftover kills its slirp4netns (and only a slirp4netns of that namespace)", async () => {
    const { net, id, runDir } = await newNetwork();
    // A pid file pointing at a process that is not this namespace's slirp4netns must not be killed.
    const other = await newNetwork();
    await writeFile(join(runDir, "slirp.pid"), `${other.net.slirpPid}\n`);
    assert.deepEqual(await cleanupSandboxNetwork(id, runDir), [
      `network namespace ${net.nsName}`,
      `socket ${net.apiSocket}`,
    ]);
    assert.equal(await waitGone(other.net.slirpPid, 0), -1, "another sandbox's slirp4netns was killed");

    await writeFile(join(runDir, "slirp.pid"), `${net.slirpPid}\n`);
    assert.deepEqual(await cleanupSandboxNetwork(id, runDir), [`slirp4netns pid ${net.slirpPid}`]);
    assert.ok((await waitGone(net.slirpPid, 0)) >= 0);
    await net.teardown(); // still fine after someone else cleaned up
  });

  test("teardown is idempotent and stops port publishing", async () => {
    const { net, runDir } = await newNetwork();
    await Promise.all([net.teardown(), net.teardown()]);
    await net.teardown();
    assert.ok(!(await listPyroNetns()).includes(net.nsName));
    assert.ok((await waitGone(net.slirpPid, 0)) >= 0);
    await assert.rejects(access(net.apiSocket));
    await assert.rejects(access(join(runDir, "slirp.pid")));
    await assert.rejects(net.addHostForward(0, 8000), { code: "SANDBOX_NOT_RUNNING" });
  });

  test("an id that could escape its name is refused before anything is created", async () => {
    await assert.rejects(createSandboxNetwork("../etc", join(tmpRoot, "x")), { code: "INVALID_ARGUMENT" });
  });

  test("a slirp4netns that fails or never gets ready is a SANDBOX_START_FAILED with its stderr, rolled back", async () => {
    const fakeDir = join(tmpRoot, "fake-bin");
    await mkdir(fakeDir, { recursive: true });
    const realPath = process.env.PATH;
    try {
      await writeFile(join(fakeDir, "slirp4netns"), "#!/bin/sh\necho 'fake slirp: cannot open tun' >&2\nexit 1\n", {
        mode: 0o755,
      });
      process.env.PATH = `${fakeDir}:${realPath}`;
      const failing = nextId();
      await assert.rejects(createSandboxNetwork(failing, join(tmpRoot, failing)), (err: unknown) => {
        assert.ok(err instanceof PyroError);
        assert.equal(err.code, "SANDBOX_START_FAILED");
        assert.match(err.message, /exited early with code 1\): fake slirp: cannot open tun/);
        return true;
      });
      assert.ok(!(await listPyroNetns()).includes(`pyro-${failing}`), "the namespace was rolled back");

      await writeFile(join(fakeDir, "slirp4netns"), "#!/bin/sh\necho 'fake slirp: waiting' >&2\nexec sleep 30\n", {
        mode: 0o755,
      });
      const hanging = nextId();
      const started = performance.now();
      await assert.rejects(createSandboxNetwork(hanging, join(tmpRoot, hanging)), (err: unknown) => {
        assert.ok(err instanceof PyroError);
        assert.equal(err.code, "SANDBOX_START_FAILED");
        assert.match(err.message, /not ready within 5000 ms\): fake slirp: waiting/);
        return true;
      });
      assert.ok(performance.now() - started < 7_000);
      assert.ok(!(await listPyroNetns()).includes(`pyro-${hanging}`), "the namespace was rolled back");
      await assert.rejects(access(join(tmpRoot, hanging, "slirp.pid")));
    } finally {
      process.env.PATH = realPath;
    }
  });

  test("setup cost: median of 5 create + teardown", async (t) => {
    const create: number[] = [];
    const teardown: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const { net } = await newNetwork();
      const t1 = performance.now();
      await net.teardown();
      create.push(t1 - t0);
      teardown.push(performance.now() - t1);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[2]!;
    t.diagnostic(
      `createSandboxNetwork median ${median(create).toFixed(1)} ms, teardown median ${median(teardown).toFixed(1)} ms, ` +
        `create+teardown median ${median(create.map((c, i) => c + teardown[i]!)).toFixed(1)} ms`,
    );
    assert.ok(median(create) < 2_000, "creating a sandbox network should take well under the readiness timeout");
  });
});
