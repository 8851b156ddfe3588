// Integration tests of the environment store against real mmdebstrap and the host's apt sources:
// a pull killed mid-way, the built root running the injected node, fast re-pulls, repair of a
// corrupt install with concurrent pulls, an unreachable archive, a build that outlasts its bound,
// a build behind an MCP vm_run that keeps the client informed until the result arrives, and the
// host's CA certificates and debian:12-build's tools at work in egress workspaces.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { lstat, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { PyroError } from "../../src/contract/errors.js";
import { EnvironmentManifest, RunResult } from "../../src/contract/schemas.js";
import { ENVIRONMENT_BUILD_TIMEOUT_MS, EnvironmentStore } from "../../src/environments/index.js";
import { LOCAL_CA_DIR, readCaCertificates } from "../../src/environments/mmdebstrap.js";
import { digestTree, mountsUnder } from "../../src/environments/tree.js";
import { PACKAGE_ROOT } from "../../src/version.js";
import { workspaceSuite } from "../helpers/workspace-suite.js";

const run = promisify(execFile);
const ENV = "debian:12-base";
const canBuild = process.getuid?.() === 0 && existsSync("/usr/bin/mmdebstrap");

let scratch: string;
let cacheDir: string;
let bundle: string;

before(async () => {
  scratch = await mkdtemp("/tmp/pyro-test-envs-");
  cacheDir = join(scratch, "cache");
  bundle = join(scratch, "pyro-agent.mjs");
  await writeFile(bundle, "// stub agent: the integration test only needs the file\n");
});

after(async () => {
  // The build tree holds root-owned device nodes; fs.rm copes, as root.
  await rm(scratch, { recursive: true, force: true });
});

function phases() {
  const seen: [string, string | undefined][] = [];
  return { seen, progress: { phase: (name: string, detail?: string) => void seen.push([name, detail]) } };
}

/** Processes whose command line mentions `needle` (e.g. a cache dir an orphaned build writes to). */
async function processesMentioning(needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(needle)) found.push(`${pid}: ${cmdline.replaceAll("\0", " ")}`);
  }
  return found;
}

async function entries(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

describe("environment store with mmdebstrap", { skip: canBuild ? false : "needs root and mmdebstrap" }, () => {
  it("reports an unreachable archive as PACKAGE_ARCHIVE_UNREACHABLE and installs nothing", async () => {
    const offline = join(scratch, "offline");
    const store = new EnvironmentStore(offline, {
      sources: ["deb http://127.0.0.1:9/debian bookworm main"],
      agentBundle: bundle,
    });
    await assert.rejects(store.pull(ENV), (err: unknown) => {
      assert.ok(err instanceof PyroError);
      assert.equal(err.code, "PACKAGE_ARCHIVE_UNREACHABLE", err.message);
      assert.match(err.message, /127\.0\.0\.1:9/);
      assert.match(err.message, /apt sources/);
      return true;
    });
    assert.deepEqual(
      (await entries(join(offline, "environments"))).filter((n) => !n.endsWith(".lock")),
      [],
      "the staging dir is removed",
    );
    assert.equal((await store.inspect(ENV)).installed, false);
  });

  it("cancels a pull through its AbortSignal, stopping mmdebstrap and installing nothing", async () => {
    const cancelled = join(scratch, "cancelled");
    const store = new EnvironmentStore(cancelled, { agentBundle: bundle });
    const ac = new AbortController();
    const { seen, progress } = phases();
    const pulling = store.pull(ENV, { progress, signal: ac.signal });
    setTimeout(() => ac.abort(), 2_500);
    await assert.rejects(pulling, (err: unknown) => {
      assert.ok(err instanceof PyroError);
      assert.equal(err.code, "ENVIRONMENT_BUILD_FAILED");
      assert.match(err.message, /cancelled/);
      return true;
    });
    assert.ok(
      seen.some(([n]) => n === "bootstrap"),
      "the abort landed during the bootstrap",
    );
    assert.deepEqual(await entries(join(cancelled, "environments")), []);
    assert.deepEqual(await processesMentioning(cancelled), []);
    assert.equal((await store.inspect(ENV)).installed, false);
  });

  it("stops a pull that outlasts its bound, naming the bound and the fix, and installs nothing", async () => {
    const bounded = join(scratch, "bounded");
    const store = new EnvironmentStore(bounded, { agentBundle: bundle });
    await assert.rejects(store.pull(ENV, { timeoutMs: 3_000 }), (err: unknown) => {
      assert.ok(err instanceof PyroError);
      assert.equal(err.code, "ENVIRONMENT_BUILD_FAILED");
      assert.match(err.message, /did not finish within 3 s/);
      assert.match(err.message, /pyro env pull debian:12-base/);
      return true;
    });
    assert.deepEqual(
      (await entries(join(bounded, "environments"))).filter((n) => !n.endsWith(".lock")),
      [],
      "the staging dir is removed",
    );
    assert.deepEqual(await processesMentioning(bounded), []);
    assert.equal((await store.inspect(ENV)).installed, false);
  });

  it("never shows a pull killed mid-way as installed, and the next pull builds it", async () => {
    const script = `
      const { EnvironmentStore } = await import(process.argv[1]);
      const store = new EnvironmentStore(process.argv[2], { agentBundle: process.argv[3] });
      await store.pull(process.argv[4], { progress: { phase: (n) => console.log(n) } });
      console.log("finished");`;
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        script,
        join(PACKAGE_ROOT, "src", "environments", "index.ts"),
        cacheDir,
        bundle,
        ENV,
      ],
      { cwd: PACKAGE_ROOT, stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise((resolve) => child.once("exit", resolve));
    // Kill 3 s after the bootstrap starts, while mmdebstrap is downloading or unpacking.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the child never reached bootstrap: ${out}`)), 30_000);
      child.stdout.on("data", () => {
        if (out.includes("bootstrap")) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await new Promise((r) => setTimeout(r, 3_000));
    child.kill("SIGKILL");
    await exited;
    assert.ok(!out.includes("finished"), "the pull was killed before it finished");

    const envs = join(cacheDir, "environments");
    const store = new EnvironmentStore(cacheDir, { agentBundle: bundle });
    assert.ok(
      (await entries(envs)).some((n) => n.startsWith(".partial-")),
      "the killed pull left its staging dir",
    );
    assert.equal((await store.inspect(ENV)).installed, false);
    assert.equal((await store.list()).environments.find((e) => e.name === ENV)?.installed, false);
    assert.deepEqual(await mountsUnder(cacheDir), [], "mmdebstrap's mounts stayed in its own namespace");
    // mmdebstrap, apt and dpkg die with the pull instead of writing on into the staging dir.
    let orphans = await processesMentioning(cacheDir);
    for (let i = 0; i < 20 && orphans.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      orphans = await processesMentioning(cacheDir);
    }
    assert.deepEqual(orphans, []);

    const { seen, progress } = phases();
    const result = await store.pull(ENV, { progress });
    assert.equal(result.pulled, true);
    assert.equal(result.installed, true);
    assert.equal(result.agent_current, true);
    const names = new Set(seen.map(([n]) => n));
    for (const p of ["resolve", "bootstrap", "inject-agent", "digest", "install"])
      assert.ok(names.has(p), `phase ${p}`);
    assert.ok(
      seen.some(([n, d]) => n === "bootstrap" && d?.startsWith("running apt-get update")),
      "mmdebstrap's progress lines reach the caller",
    );
    assert.deepEqual(
      (await entries(envs)).filter((n) => n.startsWith(".")),
      [],
      "the dead pull's staging dir and lock are gone",
    );
  });

  it("builds a root whose injected node runs, with a manifest that matches it", async () => {
    const store = new EnvironmentStore(cacheDir, { agentBundle: bundle });
    const env = await store.require(ENV);
    const manifest = EnvironmentManifest.parse(
      JSON.parse(await readFile(join(cacheDir, "environments", "debian_12-base-v1", "manifest.json"), "utf8")),
    );
    assert.deepEqual(env.manifest, manifest);
    assert.equal(manifest.suite, "bookworm");
    assert.ok(manifest.rootfs_size_bytes > 50_000_000);
    // The digest's floor is reading every byte once: tar | sha256sum over the same tree, timed in
    // this run (a ratio, since the machine may be busy).
    let started = performance.now();
    await run("sh", ["-c", 'tar -C "$1" --exclude=./opt/pyro -cf - . | sha256sum', "sh", env.rootDir]);
    const floorMs = performance.now() - started;
    started = performance.now();
    const tree = await digestTree(env.rootDir, { exclude: ["opt/pyro"] });
    const digestMs = performance.now() - started;
    assert.equal(tree.digest, manifest.rootfs_digest);
    assert.equal(tree.fileCount, manifest.rootfs_file_count);
    assert.ok(
      digestMs < 4 * floorMs + 500,
      `digest took ${Math.round(digestMs)} ms, tar | sha256sum ${Math.round(floorMs)} ms`,
    );

    const { stdout } = await run("chroot", [
      env.rootDir,
      "/opt/pyro/lib/ld-linux-x86-64.so.2",
      "--library-path",
      "/opt/pyro/lib",
      "/opt/pyro/bin/node",
      "-e",
      "console.log(1)",
    ]);
    assert.equal(stdout, "1\n");
    const { stdout: tini } = await run("chroot", [env.rootDir, "/opt/pyro/bin/tini", "--version"]);
    assert.match(tini, /tini version/);
    const { stdout: less } = await run("chroot", [env.rootDir, "/usr/bin/less", "--version"]);
    assert.match(less, /less \d+/);

    assert.equal(await readFile(join(env.rootDir, "etc", "resolv.conf"), "utf8"), "nameserver 10.0.2.3\n");
    assert.equal(await readFile(join(env.rootDir, "etc", "hostname"), "utf8"), "pyro\n");
    assert.ok((await lstat(join(env.rootDir, "workspace"))).isDirectory());
    assert.deepEqual((await entries(join(env.rootDir, "workspace"))).length, 0);
    // The host's apt sources, security suite included, carry over for apt inside the sandbox.
    const sources = await Promise.all(
      (await entries(join(env.rootDir, "etc", "apt", "sources.list.d"))).map((n) =>
        readFile(join(env.rootDir, "etc", "apt", "sources.list.d", n), "utf8"),
      ),
    );
    assert.match(sources.join("\n"), /bookworm-security/);
    assert.deepEqual(
      (await entries(join(env.rootDir, "var", "lib", "apt", "lists"))).filter((n) => n !== "lock" && n !== "partial"),
      [],
    );
  });

  it("answers a second pull from the cache in well under 100 ms", async () => {
    const store = new EnvironmentStore(cacheDir, { agentBundle: bundle });
    const started = performance.now();
    const result = await store.pull(ENV);
    const ms = performance.now() - started;
    assert.equal(result.pulled, false);
    assert.ok(ms < 100, `took ${Math.round(ms)} ms`);
  });

  it("repairs a corrupt install, building once for two concurrent pulls", async () => {
    const store = new EnvironmentStore(cacheDir, { agentBundle: bundle });
    const manifestPath = join(cacheDir, "environments", "debian_12-base-v1", "manifest.json");
    await writeFile(manifestPath, "{ truncated");
    assert.equal((await store.inspect(ENV)).installed, false);
    await assert.rejects(store.require(ENV), { code: "ENVIRONMENT_NOT_INSTALLED" });

    const first = phases();
    const second = phases();
    const results = await Promise.all([
      store.pull(ENV, { progress: first.progress }),
      new EnvironmentStore(cacheDir, { agentBundle: bundle }).pull(ENV, { progress: second.progress }),
    ]);
    assert.deepEqual(results.map((r) => r.pulled).sort(), [false, true]);
    assert.ok(results.every((r) => r.installed));
    const all = [...first.seen, ...second.seen];
    assert.equal(all.filter(([n]) => n === "repair").length, 1);
    assert.equal(all.filter(([n]) => n === "install").length, 1);
    assert.ok(
      all.some(([n]) => n === "wait"),
      "the second pull waited for the first",
    );
    EnvironmentManifest.parse(JSON.parse(await readFile(manifestPath, "utf8")));
  });

  it("prunes nothing that is current, and leaves no mounts or processes behind", async () => {
    const store = new EnvironmentStore(cacheDir, { agentBundle: bundle });
    assert.deepEqual(await store.prune(), { removed: [], freed_bytes: 0 });
    assert.equal((await store.inspect(ENV)).installed, true);
    assert.deepEqual(await mountsUnder(scratch), []);
    assert.deepEqual(await processesMentioning(scratch), []);
  });
});

const PYRO = join(PACKAGE_ROOT, "dist", "bin", "pyro.mjs");

describe("vm_run over MCP while its environment is built", {
  skip: !canBuild ? "needs root and mmdebstrap" : !existsSync(PYRO) ? "needs dist/: run npm run build" : false,
}, () => {
  it("keeps progress flowing through a real build with an empty cache, then returns the result", async () => {
    const cache = join(scratch, "mcp-cache");
    const state = join(scratch, "mcp-state");
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [PYRO, "mcp", "serve", "--profile", "vm-run"],
      env: { ...process.env, PYRO_CACHE_DIR: cache, PYRO_STATE_DIR: state } as Record<string, string>,
      stderr: "pipe",
    });
    let serverLog = "";
    transport.stderr?.on("data", (chunk: Buffer) => {
      serverLog += chunk.toString();
    });
    const client = new Client({ name: "pyro-integration", version: "1.0.0" });
    await client.connect(transport);
    const started = Date.now();
    const arrivals: { at: number; message: string; progress: number }[] = [];
    try {
      const result = await client.callTool(
        { name: "vm_run", arguments: { command: "cat /etc/debian_version", environment: ENV } },
        undefined,
        {
          onprogress: (p) => arrivals.push({ at: Date.now(), message: p.message ?? "", progress: p.progress }),
          // Far shorter than the build: only the progress keeps the request alive.
          timeout: 30_000,
          resetTimeoutOnProgress: true,
          maxTotalTimeout: ENVIRONMENT_BUILD_TIMEOUT_MS + 120_000,
        },
      );
      const finished = Date.now();
      assert.notEqual(result.isError, true, `${JSON.stringify(result.content)}\n${serverLog}`);
      const run = RunResult.parse(result.structuredContent);
      assert.equal(run.exit_code, 0);
      assert.match(run.stdout, /^12\.\d+\n$/);
      assert.equal(run.environment, ENV);

      assert.ok(arrivals.length > 0, "progress arrived before the result");
      assert.match(arrivals[0]!.message, /one-time build/);
      assert.match(arrivals[0]!.message, /pyro env pull debian:12-base/);
      assert.ok(arrivals.some((a) => a.message.includes("building environment debian:12-base: bootstrap")));
      for (let i = 1; i < arrivals.length; i++) assert.ok(arrivals[i]!.progress > arrivals[i - 1]!.progress);
      // A heartbeat every 10 s; the slack is for a loaded host.
      const gaps = [arrivals[0]!.at - started, ...arrivals.slice(1).map((a, i) => a.at - arrivals[i]!.at)];
      const widest = Math.max(...gaps, finished - arrivals.at(-1)!.at);
      assert.ok(widest < 20_000, `the client went ${widest} ms without news`);
      console.log(
        `vm_run with a cold ${ENV}: ${Math.round((finished - started) / 1000)} s, ` +
          `${arrivals.length} progress notifications, widest gap ${widest} ms`,
      );
    } finally {
      await client.close();
    }
    assert.deepEqual(await mountsUnder(scratch), []);
    assert.deepEqual(await processesMentioning(cache), []);
  });
});

describe("egress workspaces trust what the host trusts, and debian:12-build has npm and pytest", {
  skip: !canBuild ? "needs root and mmdebstrap" : !existsSync(PYRO) ? "needs dist/: run npm run build" : false,
}, () => {
  const { manager, ws, create } = workspaceSuite("trust");

  before(async () => {
    // scripts/test.sh pulls both into the shared cache; a pull here is then a no-op, and otherwise
    // builds the environment (debian:12-build: about 3-4 min on 2 cores).
    for (const name of ["debian:12", "debian:12-build"]) {
      const started = performance.now();
      const pulled = await manager.pullEnvironment(name);
      const seconds = Math.round((performance.now() - started) / 1000);
      console.log(`${name}: ${pulled.pulled ? `built in ${seconds} s` : "already installed"}`);
    }
  });

  async function exec(workspace: string, command: string) {
    const out = await ws.exec({ workspace, command, timeout_seconds: 120 });
    assert.equal(out.exit_code, 0, `${command}: ${out.stderr}`);
    return out.stdout;
  }

  it("puts each of the host's CA certificates into every root's trust store", async () => {
    const host = await readCaCertificates();
    for (const name of ["debian:12", "debian:12-build"]) {
      const { rootDir } = await manager.environments.require(name);
      const bundle = await readFile(join(rootDir, "etc", "ssl", "certs", "ca-certificates.crt"), "utf8");
      assert.deepEqual(
        (await readCaCertificates(join(rootDir, LOCAL_CA_DIR))).map((c) => c.path),
        host.map((c) => c.path),
      );
      for (const cert of host) assert.ok(bundle.includes(cert.data.toString().trim()), `${name} trusts ${cert.path}`);
    }
  });

  it("debian:12: curl reaches https://registry.npmjs.org/", async () => {
    const { workspace_id } = await create({ network_policy: "egress" });
    const status = await exec(workspace_id, "curl -sS -o /dev/null -w '%{http_code}' https://registry.npmjs.org/");
    assert.equal(status, "200");
  });

  it("debian:12-build: npm view reaches the registry; npx and pytest are there", async () => {
    const { workspace_id } = await create({ environment: "debian:12-build", network_policy: "egress" });
    assert.match(await exec(workspace_id, "npm view is-number version"), /^\d+\.\d+\.\d+\n$/);
    assert.match(await exec(workspace_id, "npx --version"), /^\d+\.\d+\.\d+\n$/);
    assert.match(await exec(workspace_id, "python3 -m pytest --version 2>&1"), /^pytest \d+\.\d+/);
  });
});
