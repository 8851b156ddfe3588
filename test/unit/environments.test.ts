// Unit tests of the environment store without mmdebstrap: catalog, cache validity, interrupted
// builds, prune, locks, the tree digest, agent refresh, the host's CA certificates, and mmdebstrap
// failure classification.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, link, lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { PyroError } from "../../src/contract/errors.js";
import { EnvironmentInspect, EnvironmentList, EnvironmentManifest } from "../../src/contract/schemas.js";
import { parseSlug, slugOf } from "../../src/environments/catalog.js";
import { AGENT_ARGV, CATALOG, currentAgentDigest, EnvironmentStore } from "../../src/environments/index.js";
import { parseLdd, readAgentVersion } from "../../src/environments/inject.js";
import { acquireLock, processStartTime, tryAcquireLock } from "../../src/environments/lock.js";
import {
  caCertificatesDigest,
  classifyMmdebstrapOutput,
  confinedCommand,
  hostAptSources,
  LOCAL_CA_DIR,
  mmdebstrapArgs,
  mmdebstrapError,
  readCaCertificates,
  stageCaCertificates,
} from "../../src/environments/mmdebstrap.js";
import { configureRoot } from "../../src/environments/store.js";
import { digestTree, diskUsage, removeTree } from "../../src/environments/tree.js";

let scratch: string;
let bundle: string;
/** The stores' stand-in for the host's CA directory: empty, so tests do not depend on the host's. */
let hostCas: string;

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), "pyro-test-envs-"));
  bundle = join(scratch, "agent.mjs");
  await writeFile(bundle, "// stub agent for tests\n");
  hostCas = join(scratch, "host-cas");
  await mkdir(hostCas);
});

after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function tempDir(label: string): Promise<string> {
  return mkdtemp(join(scratch, `${label}-`));
}

function deadPid(): number {
  const pid = spawnSync("true").pid;
  assert.ok(pid);
  return pid;
}

function rejectsWith(code: string, pattern?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof PyroError, `expected a PyroError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}

function manifestFor(name: string, over: Partial<EnvironmentManifest> = {}): EnvironmentManifest {
  const entry = CATALOG.find((e) => e.name === name)!;
  return {
    name,
    version: entry.version,
    suite: "bookworm",
    packages: [...entry.packages],
    created_at: new Date().toISOString(),
    agent_version: "0.0.0",
    agent_digest: "sha256:old",
    rootfs_digest: "sha256:x",
    rootfs_size_bytes: 1,
    rootfs_file_count: 1,
    build_seconds: 1,
    ...over,
  };
}

/** Lays out what a finished pull leaves, without building anything. */
async function fakeInstall(
  cacheDir: string,
  name: string,
  opts: { dirName?: string; manifest?: string | null; agentDigest?: string; version?: boolean } = {},
): Promise<string> {
  const entry = CATALOG.find((e) => e.name === name)!;
  const dir = join(cacheDir, "environments", opts.dirName ?? slugOf(entry));
  await mkdir(join(dir, "rootfs", "opt", "pyro"), { recursive: true });
  await mkdir(join(dir, "rootfs", "etc"), { recursive: true });
  await writeFile(join(dir, "rootfs", "etc", "os-release"), "ID=debian\n");
  const agentDigest = opts.agentDigest ?? "sha256:old";
  if (opts.version !== false) {
    await writeFile(
      join(dir, "rootfs", "opt", "pyro", "VERSION"),
      JSON.stringify({ agent_version: "0.0.0", agent_digest: agentDigest }),
    );
  }
  if (opts.manifest !== null) {
    await writeFile(
      join(dir, "manifest.json"),
      opts.manifest ?? JSON.stringify(manifestFor(name, { agent_digest: agentDigest })),
    );
  }
  return dir;
}

describe("catalog", () => {
  it("offers the three Debian 12 environments with their packages", () => {
    assert.deepEqual(
      CATALOG.map((e) => e.name),
      ["debian:12", "debian:12-base", "debian:12-build"],
    );
    const [full, base, build] = CATALOG;
    assert.deepEqual(base!.packages, ["ca-certificates", "procps", "less"]);
    assert.ok(full!.packages.includes("git"));
    for (const p of full!.packages) assert.ok(build!.packages.includes(p), `debian:12-build lacks ${p}`);
    for (const p of ["build-essential", "nodejs", "npm", "cmake", "python3-venv", "python3-pytest"])
      assert.ok(build!.packages.includes(p), `debian:12-build lacks ${p}`);
    for (const e of CATALOG) {
      assert.equal(e.suite, "bookworm");
      assert.match(e.version, /^\w+$/);
      // The build adds the host's CA certificates with update-ca-certificates.
      assert.ok(e.packages.includes("ca-certificates"), `${e.name} lacks ca-certificates`);
    }
  });

  it("names cache directories without colons, and reads them back", () => {
    assert.equal(slugOf({ name: "debian:12-base", version: "1" }), "debian_12-base-v1");
    assert.deepEqual(parseSlug("debian_12-base-v1"), { base: "debian_12-base", version: "1" });
    assert.equal(parseSlug(".partial-debian_12-v1-12-ab"), undefined);
    assert.equal(parseSlug("notes"), undefined);
  });

  it("rejects unknown names, listing the catalog", async () => {
    const store = new EnvironmentStore(await tempDir("unknown"), { agentBundle: bundle, caDir: hostCas });
    const check = rejectsWith("ENVIRONMENT_UNKNOWN", /debian:12, debian:12-base, debian:12-build/);
    await assert.rejects(store.inspect("ubuntu:24.04"), check);
    await assert.rejects(store.pull("ubuntu:24.04"), check);
    await assert.rejects(store.require("debian"), check);
  });
});

describe("cache validity", () => {
  it("lists nothing as installed in an empty cache", async () => {
    const store = new EnvironmentStore(await tempDir("empty"), { agentBundle: bundle, caDir: hostCas });
    const list = EnvironmentList.parse(await store.list());
    assert.equal(list.count, 3);
    assert.ok(list.environments.every((e) => !e.installed));
    assert.match(list.catalog_version, /^\d+\.\d+\.\d+/);
    await assert.rejects(
      store.require("debian:12"),
      rejectsWith("ENVIRONMENT_NOT_INSTALLED", /environment debian:12 is not installed; run: pyro env pull debian:12/),
    );
    assert.deepEqual(await store.prune(), { removed: [], freed_bytes: 0 });
  });

  it("never counts an interrupted or corrupt build as installed", async () => {
    const cacheDir = await tempDir("interrupted");
    const store = new EnvironmentStore(cacheDir, { agentBundle: bundle, caDir: hostCas });
    // A build killed before the rename: only a staging dir.
    const partial = join(cacheDir, "environments", `.partial-debian_12-v1-${deadPid()}-0a1b2c`);
    await mkdir(join(partial, "rootfs", "usr"), { recursive: true });
    await writeFile(join(partial, "manifest.json"), JSON.stringify(manifestFor("debian:12")));
    // Final dirs that must not count: no manifest, corrupt manifest, and no agent.
    await fakeInstall(cacheDir, "debian:12-base", { manifest: null });
    await fakeInstall(cacheDir, "debian:12-build", { manifest: "{ not json" });
    await fakeInstall(cacheDir, "debian:12", { version: false });

    const list = await store.list();
    assert.deepEqual(
      list.environments.map((e) => [e.name, e.installed]),
      [
        ["debian:12", false],
        ["debian:12-base", false],
        ["debian:12-build", false],
      ],
    );
    for (const name of ["debian:12", "debian:12-base", "debian:12-build"]) {
      const info = EnvironmentInspect.parse(await store.inspect(name));
      assert.equal(info.installed, false);
      assert.equal(info.path, null);
      assert.equal(info.manifest, null);
      await assert.rejects(store.require(name), rejectsWith("ENVIRONMENT_NOT_INSTALLED"));
    }
  });

  it("rejects a manifest that passes the schema but names another environment or version", async () => {
    const cacheDir = await tempDir("mismatch");
    const store = new EnvironmentStore(cacheDir, { agentBundle: bundle, caDir: hostCas });
    await fakeInstall(cacheDir, "debian:12", { manifest: JSON.stringify(manifestFor("debian:12", { version: "0" })) });
    await fakeInstall(cacheDir, "debian:12-base", {
      manifest: JSON.stringify({ ...manifestFor("debian:12-base"), rootfs_size_bytes: "big" }),
    });
    assert.equal((await store.inspect("debian:12")).installed, false);
    assert.equal((await store.inspect("debian:12-base")).installed, false);
  });

  it("reports a complete install with its manifest, and pulls it again in no time", async () => {
    const cacheDir = await tempDir("valid");
    const store = new EnvironmentStore(cacheDir, { agentBundle: bundle, caDir: hostCas });
    const digest = await currentAgentDigest({ bundle });
    const dir = await fakeInstall(cacheDir, "debian:12-base", { agentDigest: digest });
    const info = await store.inspect("debian:12-base");
    assert.equal(info.installed, true);
    assert.equal(info.path, dir);
    assert.equal(info.agent_current, true);
    assert.equal(info.manifest?.agent_digest, digest);

    const started = performance.now();
    const pulled = await store.pull("debian:12-base");
    assert.ok(performance.now() - started < 100, "a pull of an installed environment must be quick");
    assert.equal(pulled.pulled, false);
    assert.equal(pulled.installed, true);

    const env = await store.require("debian:12-base");
    assert.equal(env.rootDir, join(dir, "rootfs"));
    assert.equal(env.manifest.name, "debian:12-base");
  });

  it("refreshes a stale agent in place on require", async () => {
    const cacheDir = await tempDir("stale-agent");
    const store = new EnvironmentStore(cacheDir, { agentBundle: bundle, caDir: hostCas });
    const dir = await fakeInstall(cacheDir, "debian:12", { agentDigest: "sha256:from-an-older-pyro" });
    assert.equal((await store.inspect("debian:12")).agent_current, false);

    const env = await store.require("debian:12");
    const current = await currentAgentDigest({ bundle });
    assert.equal(env.manifest.agent_digest, current);
    assert.equal((await readAgentVersion(env.rootDir))?.agent_digest, current);
    const manifest = EnvironmentManifest.parse(JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")));
    assert.equal(manifest.agent_digest, current);
    assert.equal(manifest.rootfs_digest, "sha256:x", "the rest of the manifest is kept");
    const pyro = join(env.rootDir, "opt", "pyro");
    assert.equal(await readFile(join(pyro, "agent", "pyro-agent.mjs"), "utf8"), await readFile(bundle, "utf8"));
    assert.ok((await stat(join(pyro, "bin", "node"))).mode & 0o111);
    assert.ok((await stat(join(pyro, "bin", "tini"))).mode & 0o111);
    assert.ok((await stat(join(pyro, "lib", "ld-linux-x86-64.so.2"))).isFile());
    assert.ok((await stat(join(pyro, "lib", "libc.so.6"))).isFile());
    assert.equal((await store.inspect("debian:12")).agent_current, true);
  });
});

describe("the host's CA certificates", () => {
  const pem = (name: string) =>
    `-----BEGIN CERTIFICATE-----\n${Buffer.from(name).toString("base64")}\n-----END CERTIFICATE-----\n`;

  it("reads what update-ca-certificates would add: *.crt at any depth, symlinks followed, sorted", async () => {
    const dir = await tempDir("cas");
    await mkdir(join(dir, "corp", "nested"), { recursive: true });
    await writeFile(join(dir, "b.crt"), pem("b"));
    await writeFile(join(dir, "corp", "nested", "a.crt"), pem("a"));
    await writeFile(join(dir, "elsewhere.pem"), pem("linked"));
    await symlink(join(dir, "elsewhere.pem"), join(dir, "linked.crt"));
    await symlink(join(dir, "gone.pem"), join(dir, "dangling.crt"));
    await writeFile(join(dir, "README"), "not a certificate\n");
    await writeFile(join(dir, "site.key"), "-----BEGIN PRIVATE KEY-----\n");
    const certs = await readCaCertificates(dir);
    assert.deepEqual(
      certs.map((c) => [c.path, c.data.toString()]),
      [
        ["b.crt", pem("b")],
        ["corp/nested/a.crt", pem("a")],
        ["linked.crt", pem("linked")],
      ],
    );
    assert.deepEqual(await readCaCertificates(join(dir, "missing")), []);
  });

  it("digests names and contents, so an added, renamed or changed certificate counts", () => {
    const one = [{ path: "a.crt", data: Buffer.from(pem("a")) }];
    const base = caCertificatesDigest(one);
    assert.match(base, /^sha256:[0-9a-f]{64}$/);
    assert.equal(caCertificatesDigest([{ path: "a.crt", data: Buffer.from(pem("a")) }]), base);
    assert.notEqual(caCertificatesDigest([{ path: "b.crt", data: one[0]!.data }]), base);
    assert.notEqual(caCertificatesDigest([{ path: "a.crt", data: Buffer.from(pem("b")) }]), base);
    assert.notEqual(caCertificatesDigest([...one, { path: "b.crt", data: Buffer.from(pem("b")) }]), base);
    assert.notEqual(caCertificatesDigest([]), base);
  });

  it("stages the certificates for the build, and refuses a file that holds a private key", async () => {
    const staged = join(await tempDir("staged"), "ca");
    await stageCaCertificates(
      [
        { path: "top.crt", data: Buffer.from(pem("top")) },
        { path: "corp/inner.crt", data: Buffer.from(pem("inner")) },
      ],
      staged,
    );
    assert.equal(await readFile(join(staged, "corp", "inner.crt"), "utf8"), pem("inner"));
    assert.equal((await stat(join(staged, "top.crt"))).mode & 0o777, 0o644);

    const withKey = `${pem("cert")}-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n`;
    const refused = join(await tempDir("refused"), "ca");
    await assert.rejects(
      stageCaCertificates([{ path: "corp/bundle.crt", data: Buffer.from(withKey) }], refused),
      rejectsWith(
        "ENVIRONMENT_BUILD_FAILED",
        new RegExp(`${LOCAL_CA_DIR}/corp/bundle\\.crt holds a private key.*Keep only the certificate`),
      ),
    );
    await assert.rejects(lstat(join(refused, "corp", "bundle.crt")), { code: "ENOENT" });
  });

  it("counts a root built with another set as stale: not installed, rebuilt by a pull, kept by prune", async () => {
    const cacheDir = await tempDir("stale-cas");
    const host = await tempDir("stale-cas-host");
    const store = new EnvironmentStore(cacheDir, { agentBundle: bundle, caDir: host });
    const dir = await fakeInstall(cacheDir, "debian:12-base", { agentDigest: await currentAgentDigest({ bundle }) });
    // Built with no extra certificates, and the host has none: installed.
    assert.equal((await store.inspect("debian:12-base")).installed, true);

    await writeFile(join(host, "corp.crt"), pem("corp"));
    const info = await store.inspect("debian:12-base");
    assert.equal(info.installed, false);
    assert.equal(info.path, null);
    await assert.rejects(store.require("debian:12-base"), (err: unknown) => {
      rejectsWith(
        "ENVIRONMENT_NOT_INSTALLED",
        /debian:12-base needs a rebuild: the host's CA certificates \(1 in .*\) are not the 0 it was built with; run: pyro env pull debian:12-base/,
      )(err);
      assert.match(String((err as PyroError).details?.reason), /CA certificates/);
      return true;
    });
    // Sandboxes may still run on it until a pull swaps the rebuild in.
    assert.deepEqual((await store.prune()).removed, []);
    await lstat(join(dir, "rootfs", "etc", "os-release"));

    // The root's copy is what it was built with: once it matches the host's again, it is current.
    const rootCas = join(dir, "rootfs", LOCAL_CA_DIR);
    await mkdir(rootCas, { recursive: true });
    await writeFile(join(rootCas, "corp.crt"), pem("corp"));
    assert.equal((await store.inspect("debian:12-base")).installed, true);
    await writeFile(join(host, "corp.crt"), pem("corp, reissued"));
    assert.equal((await store.inspect("debian:12-base")).installed, false);
  });
});

describe("prune", () => {
  it("removes dead partial builds, broken and old copies, and foreign environments; keeps the rest", async () => {
    const cacheDir = await tempDir("prune");
    const envs = join(cacheDir, "environments");
    const store = new EnvironmentStore(cacheDir, { agentBundle: bundle, caDir: hostCas });
    const digest = await currentAgentDigest({ bundle });
    await fakeInstall(cacheDir, "debian:12-base", { agentDigest: digest });
    await fakeInstall(cacheDir, "debian:12", { manifest: "garbage" });
    await fakeInstall(cacheDir, "debian:12", { dirName: "debian_12-v0" });
    await fakeInstall(cacheDir, "debian:12", { dirName: "ubuntu_24.04-v1" });
    const dead = `.partial-debian_12-build-v1-${deadPid()}-ffee`;
    await mkdir(join(envs, dead, "rootfs"), { recursive: true });
    await writeFile(join(envs, dead, "rootfs", "big"), Buffer.alloc(64 * 1024, 1));
    // A build in progress in this very process: its pid is alive and it holds the slug's lock.
    const live = `.partial-debian_12-build-v1-${process.pid}-abcd`;
    await mkdir(join(envs, live), { recursive: true });
    const lock = await tryAcquireLock(join(envs, ".debian_12-build-v1.lock"));
    assert.ok(lock);
    await writeFile(join(envs, "README"), "not ours to delete\n");
    try {
      const result = await store.prune();
      assert.deepEqual(result.removed.sort(), [dead, "debian_12-v0", "debian_12-v1", "ubuntu_24.04-v1"].sort());
      assert.ok(result.freed_bytes >= 64 * 1024);
      assert.equal((await store.inspect("debian:12-base")).installed, true);
      await lstat(join(envs, live));
      await lstat(join(envs, "README"));
      await lstat(join(envs, ".debian_12-build-v1.lock"));
    } finally {
      await lock.release();
    }
    // Once nobody holds its lock, the leftover partial is debris even though its pid lives.
    const again = await store.prune();
    assert.deepEqual(again.removed, [live]);
  });

  it("leaves dead partial builds alone on the fast path; prune clears them", async () => {
    const cacheDir = await tempDir("next-pull");
    const envs = join(cacheDir, "environments");
    const store = new EnvironmentStore(cacheDir, { agentBundle: bundle, caDir: hostCas });
    await fakeInstall(cacheDir, "debian:12-base", { agentDigest: await currentAgentDigest({ bundle }) });
    const dead = `.partial-debian_12-v1-${deadPid()}-0011`;
    await mkdir(join(envs, dead), { recursive: true });
    // Pulling an installed environment takes the fast path and must not touch anything.
    await store.pull("debian:12-base");
    await lstat(join(envs, dead));
    await store.prune();
    await assert.rejects(lstat(join(envs, dead)), { code: "ENOENT" });
  });
});

describe("lock", () => {
  it("is exclusive until released", async () => {
    const path = join(await tempDir("lock"), "x.lock");
    const a = await tryAcquireLock(path);
    assert.ok(a);
    assert.equal(await tryAcquireLock(path), null);
    const owner = JSON.parse(await readFile(path, "utf8")) as { pid: number; start: string };
    assert.equal(owner.pid, process.pid);
    assert.equal(owner.start, await processStartTime(process.pid));
    await a.release();
    await assert.rejects(lstat(path), { code: "ENOENT" });
    const b = await tryAcquireLock(path);
    assert.ok(b);
    await b.release();
  });

  it("takes over a lock whose owner died, or whose pid now belongs to another process", async () => {
    const dir = await tempDir("stale");
    const dead = join(dir, "dead.lock");
    await writeFile(dead, JSON.stringify({ pid: deadPid(), start: "1", token: "t" }));
    const a = await tryAcquireLock(dead);
    assert.ok(a, "a dead owner's lock is taken over");
    await a.release();

    const recycled = join(dir, "recycled.lock");
    await writeFile(recycled, JSON.stringify({ pid: process.pid, start: "1", token: "t" }));
    const b = await tryAcquireLock(recycled);
    assert.ok(b, "a live pid with another start time is not the owner");
    await b.release();
  });

  it("treats an empty lock file as held for a moment, then as abandoned", async () => {
    const path = join(await tempDir("empty-lock"), "e.lock");
    await writeFile(path, "");
    assert.equal(await tryAcquireLock(path), null);
    const old = new Date(Date.now() - 60_000);
    await utimes(path, old, old);
    const lock = await tryAcquireLock(path);
    assert.ok(lock);
    await lock.release();
  });

  it("lets exactly one of many racing waiters take over a stale lock", async () => {
    // The interleaving that breaks an unguarded takeover is rare, so race many times.
    const dir = await tempDir("race");
    const pid = deadPid();
    for (let round = 0; round < 60; round++) {
      const path = join(dir, `r${round}.lock`);
      await writeFile(path, JSON.stringify({ pid, start: "1", token: "t" }));
      const results = await Promise.all(Array.from({ length: 12 }, () => tryAcquireLock(path)));
      const winners = results.filter((r) => r !== null);
      assert.equal(winners.length, 1, `round ${round}: ${winners.length} holders`);
      await winners[0]!.release();
    }
  });

  it("waits for the holder, reports whom it waits for, and honours timeouts and aborts", async () => {
    const path = join(await tempDir("wait"), "w.lock");
    const held = await acquireLock(path);
    let waitedFor: number | undefined;
    const waiting = acquireLock(path, { pollMs: 20, onWait: (pid) => (waitedFor = pid) });
    setTimeout(() => void held.release(), 150);
    const started = performance.now();
    const got = await waiting;
    assert.ok(performance.now() - started >= 100);
    assert.equal(waitedFor, process.pid);

    await assert.rejects(
      acquireLock(path, { pollMs: 20, timeoutMs: 100 }),
      rejectsWith("LOCK_TIMEOUT", /timed out .* held by pid \d+/),
    );
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(acquireLock(path, { pollMs: 20, signal: ac.signal }), { name: "AbortError" });
    await got.release();
  });

  it("does not delete a lock that another process has since taken", async () => {
    const path = join(await tempDir("replaced"), "p.lock");
    const mine = await acquireLock(path);
    const theirs = JSON.stringify({ pid: process.pid, start: await processStartTime(process.pid), token: "theirs" });
    await writeFile(path, theirs);
    await mine.release();
    assert.equal(await readFile(path, "utf8"), theirs);
  });
});

describe("tree digest", () => {
  async function makeTree(root: string): Promise<void> {
    await mkdir(join(root, "etc", "deep", "er"), { recursive: true });
    await mkdir(join(root, "opt", "pyro", "bin"), { recursive: true });
    await writeFile(join(root, "etc", "hostname"), "pyro\n");
    await writeFile(join(root, "etc", "deep", "er", "big.bin"), Buffer.alloc(5 * 1024 * 1024, 7));
    await writeFile(join(root, "opt", "pyro", "bin", "node"), "agent runtime");
    await symlink("usr/bin", join(root, "bin"));
    await link(join(root, "etc", "hostname"), join(root, "etc", "hostname.hardlink"));
    await chmod(join(root, "etc", "hostname"), 0o644);
  }

  it("is deterministic, location-independent, and sensitive to content, mode and links", async () => {
    const a = await tempDir("tree-a");
    const b = await tempDir("tree-b");
    await makeTree(a);
    await makeTree(b);
    const da = await digestTree(a, { exclude: ["opt/pyro"] });
    assert.match(da.digest, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(await digestTree(a, { exclude: ["opt/pyro"], concurrency: 1 }), da);
    assert.deepEqual(await digestTree(b, { exclude: ["opt/pyro"] }), da);
    assert.equal(da.fileCount, 3);
    assert.equal(da.sizeBytes, 5 * 1024 * 1024 + 5, "a hard-linked file counts once");

    await writeFile(join(b, "opt", "pyro", "bin", "node"), "another agent");
    assert.equal((await digestTree(b, { exclude: ["opt/pyro"] })).digest, da.digest, "the agent is excluded");

    await chmod(join(b, "etc", "hostname"), 0o600);
    const modeChanged = await digestTree(b, { exclude: ["opt/pyro"] });
    assert.notEqual(modeChanged.digest, da.digest);
    await chmod(join(b, "etc", "hostname"), 0o644);

    await rm(join(b, "bin"));
    await symlink("usr/sbin", join(b, "bin"));
    assert.notEqual((await digestTree(b, { exclude: ["opt/pyro"] })).digest, da.digest);
    await rm(join(b, "bin"));
    await symlink("usr/bin", join(b, "bin"));
    assert.equal((await digestTree(b, { exclude: ["opt/pyro"] })).digest, da.digest);

    const big = join(b, "etc", "deep", "er", "big.bin");
    const bytes = await readFile(big);
    bytes[bytes.length - 1] = 8;
    await writeFile(big, bytes);
    assert.notEqual((await digestTree(b, { exclude: ["opt/pyro"] })).digest, da.digest);
  });

  it("measures disk usage and removes trees", async () => {
    const a = await tempDir("du");
    await makeTree(a);
    assert.ok((await diskUsage(a)) >= 5 * 1024 * 1024);
    assert.equal(await diskUsage(join(a, "missing")), 0);
    await removeTree(a);
    await assert.rejects(lstat(a), { code: "ENOENT" });
    await removeTree(a);
  });
});

describe("mmdebstrap", () => {
  const sources = ["/etc/apt/sources.list.d/debian.sources"];
  const unreachable = `I: running apt-get update...
Ign:1 http://127.0.0.1:9/debian bookworm InRelease
Err:1 http://127.0.0.1:9/debian bookworm InRelease
  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)
Reading package lists...
E: Failed to fetch http://127.0.0.1:9/debian/dists/bookworm/InRelease  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)
E: Some index files failed to download. They have been ignored, or old ones used instead.
E: apt-get update --error-on=any -oAPT::Status-Fd=<$fd> -oDpkg::Use-Pty=false failed
I: main() received signal PIPE: waiting for setup...
E: mmdebstrap failed to run`;
  const dns = `Err:1 http://deb.debian.org/debian bookworm InRelease
  Temporary failure resolving 'deb.debian.org'
E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Temporary failure resolving 'deb.debian.org'`;
  const missingPackage = `I: installing remaining packages inside the chroot...
Reading package lists...
Building dependency tree...
E: Unable to locate package nosuchpkg-xyz
E: setup failed: E: apt-get --yes install nosuchpkg-xyz failed
E: mmdebstrap failed to run`;
  const badKey = `W: GPG error: http://deb.debian.org/debian bookworm InRelease: The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 6ED0E7B82643E131
E: The repository 'http://deb.debian.org/debian bookworm InRelease' is not signed.
E: apt-get update --error-on=any failed`;

  it("classifies archive outages apart from build failures", () => {
    assert.equal(classifyMmdebstrapOutput(unreachable), "archive-unreachable");
    assert.equal(classifyMmdebstrapOutput(dns), "archive-unreachable");
    assert.equal(classifyMmdebstrapOutput("E: Could not resolve 'proxy.example'"), "archive-unreachable");
    assert.equal(classifyMmdebstrapOutput("Unable to connect to deb.debian.org:http:"), "archive-unreachable");
    assert.equal(classifyMmdebstrapOutput(missingPackage), "build-failed");
    assert.equal(classifyMmdebstrapOutput(badKey), "build-failed");
    assert.equal(classifyMmdebstrapOutput(""), "build-failed");
  });

  it("words errors that name the sources and quote the end of the output", () => {
    const down = mmdebstrapError(unreachable, { environment: "debian:12", sources, exitCode: 25 });
    assert.equal(down.code, "PACKAGE_ARCHIVE_UNREACHABLE");
    assert.match(down.message, /debian:12/);
    assert.match(down.message, /\/etc\/apt\/sources\.list\.d\/debian\.sources/);
    assert.match(down.message, /proxy/);
    assert.match(down.message, /E: mmdebstrap failed to run$/);
    assert.ok(!down.message.includes("Ign:1"), "only the last lines are quoted");

    const broken = mmdebstrapError(missingPackage, { environment: "debian:12", sources: [], exitCode: 25 });
    assert.equal(broken.code, "ENVIRONMENT_BUILD_FAILED");
    assert.match(broken.message, /Unable to locate package nosuchpkg-xyz/);
    assert.match(broken.message, /default mirror/);
  });

  it("builds the confined command line", () => {
    const args = mmdebstrapArgs({
      suite: "bookworm",
      packages: ["git", "less"],
      target: "/c/rootfs",
      sources: ["/etc/apt/sources.list", "deb http://127.0.0.1:9/debian bookworm main"],
      aptOptions: ['Acquire::http::Proxy "http://proxy:3128"'],
    });
    assert.deepEqual(args, [
      "--variant=minbase",
      "--include=git,less",
      '--aptopt=Acquire::http::Proxy "http://proxy:3128"',
      "bookworm",
      "/c/rootfs",
      "/etc/apt/sources.list",
      "deb http://127.0.0.1:9/debian bookworm main",
    ]);
    // With the host's CA certificates staged: copied into the root, then its trust store rebuilt.
    const withCas = mmdebstrapArgs({
      suite: "bookworm",
      packages: ["ca-certificates"],
      target: "/c/rootfs",
      sources: [],
      caDir: "/cache/it's mine/tmp/ca-certificates",
    });
    assert.deepEqual(withCas, [
      "--variant=minbase",
      "--include=ca-certificates",
      "--customize-hook=sync-in '/cache/it'\\''s mine/tmp/ca-certificates' /usr/local/share/ca-certificates",
      '--customize-hook=chroot "$1" update-ca-certificates',
      "bookworm",
      "/c/rootfs",
    ]);
    const root = confinedCommand("/usr/bin/mmdebstrap", args, true);
    assert.deepEqual(root.slice(0, 4), ["setpriv", "--pdeathsig", "KILL", "--"]);
    assert.ok(root.includes("--pid") && root.includes("--mount") && root.includes("--kill-child=SIGKILL"));
    assert.deepEqual(root.slice(-args.length - 1), ["/usr/bin/mmdebstrap", ...args]);
    assert.deepEqual(confinedCommand("/usr/bin/mmdebstrap", args, false), [
      "setpriv",
      "--pdeathsig",
      "KILL",
      "--",
      "/usr/bin/mmdebstrap",
      ...args,
    ]);
  });

  it("takes the host's one-line and deb822 source files, skipping empty and disabled ones", async () => {
    const etc = await tempDir("etc-apt");
    await mkdir(join(etc, "sources.list.d"));
    await writeFile(join(etc, "sources.list"), "# moved to sources.list.d\n\n");
    await writeFile(join(etc, "sources.list.d", "debian.sources"), "Types: deb\nURIs: http://deb.debian.org/debian\n");
    await writeFile(join(etc, "sources.list.d", "extra.list"), "deb http://example.org/debian bookworm main\n");
    await writeFile(join(etc, "sources.list.d", "old.list.disabled"), "deb http://example.org bookworm main\n");
    await writeFile(join(etc, "sources.list.d", "blank.list"), "\n# nothing\n");
    assert.deepEqual(await hostAptSources(etc), [
      join(etc, "sources.list.d", "debian.sources"),
      join(etc, "sources.list.d", "extra.list"),
    ]);
    await writeFile(join(etc, "sources.list"), "deb http://deb.debian.org/debian bookworm main\n");
    assert.equal((await hostAptSources(etc))[0], join(etc, "sources.list"));
  });
});

describe("agent injection", () => {
  it("starts the agent through tini and the copied loader", () => {
    assert.deepEqual(AGENT_ARGV, [
      "/opt/pyro/bin/tini",
      "-s",
      "--",
      "/opt/pyro/lib/ld-linux-x86-64.so.2",
      "--library-path",
      "/opt/pyro/lib",
      "/opt/pyro/bin/node",
      "/opt/pyro/agent/pyro-agent.mjs",
    ]);
  });

  it("parses ldd output into libraries and the loader", () => {
    const out = `\tlinux-vdso.so.1 (0x00007ffd3c5f2000)
\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f5b655e4000)
\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f5b65200000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f5b6501e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f5b655fc000)
`;
    assert.deepEqual(parseLdd(out), {
      libraries: [
        { name: "libdl.so.2", path: "/lib/x86_64-linux-gnu/libdl.so.2" },
        { name: "libstdc++.so.6", path: "/lib/x86_64-linux-gnu/libstdc++.so.6" },
        { name: "libc.so.6", path: "/lib/x86_64-linux-gnu/libc.so.6" },
      ],
      interpreter: "/lib64/ld-linux-x86-64.so.2",
    });
    assert.throws(() => parseLdd("\tlibfoo.so.1 => not found\n"), rejectsWith("HOST_REQUIREMENT_MISSING", /libfoo/));
  });

  it("digests the bundle, node version and tini, and notices a rebuilt bundle", async () => {
    const b = join(await tempDir("bundle"), "agent.mjs");
    await writeFile(b, "one");
    const expected = createHash("sha256")
      .update("one")
      .update(process.version)
      .update(await readFile("/usr/bin/tini-static"))
      .digest("hex");
    assert.equal(await currentAgentDigest({ bundle: b }), `sha256:${expected}`);
    await writeFile(b, "two, longer");
    assert.notEqual(await currentAgentDigest({ bundle: b }), `sha256:${expected}`);
    await assert.rejects(
      currentAgentDigest({ bundle: join(scratch, "missing.mjs") }),
      rejectsWith("HOST_REQUIREMENT_MISSING", /npm run build/),
    );
    await assert.rejects(
      currentAgentDigest({ bundle: b, tini: join(scratch, "no-tini") }),
      rejectsWith("HOST_REQUIREMENT_MISSING", /apt-get install tini/),
    );
  });
});

describe("root configuration", () => {
  it("gives the root its own identity and DNS, a /workspace, and no apt caches", async () => {
    const root = await tempDir("configure");
    for (const d of ["etc", "var/cache/apt/archives/partial", "var/lib/apt/lists/partial"]) {
      await mkdir(join(root, d), { recursive: true });
    }
    await writeFile(join(root, "etc", "hostname"), "host-machine\n");
    await symlink("../run/systemd/resolve/stub-resolv.conf", join(root, "etc", "resolv.conf"));
    await writeFile(join(root, "var/cache/apt/archives/git_1.deb"), "x");
    await writeFile(join(root, "var/cache/apt/archives/lock"), "");
    await writeFile(join(root, "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease"), "x");
    await writeFile(join(root, "var/lib/apt/lists/lock"), "");

    await configureRoot(root);
    assert.equal(await readFile(join(root, "etc", "hostname"), "utf8"), "pyro\n");
    assert.match(await readFile(join(root, "etc", "hosts"), "utf8"), /^127\.0\.0\.1\s+localhost pyro$/m);
    const resolv = await lstat(join(root, "etc", "resolv.conf"));
    assert.ok(resolv.isFile(), "resolv.conf is a regular file, not the host's symlink");
    assert.equal(await readFile(join(root, "etc", "resolv.conf"), "utf8"), "nameserver 10.0.2.3\n");
    const ws = await stat(join(root, "workspace"));
    assert.ok(ws.isDirectory());
    assert.equal(ws.mode & 0o7777, 0o755);
    await assert.rejects(lstat(join(root, "var/cache/apt/archives/git_1.deb")), { code: "ENOENT" });
    await lstat(join(root, "var/cache/apt/archives/lock"));
    await assert.rejects(lstat(join(root, "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease")), {
      code: "ENOENT",
    });
    await lstat(join(root, "var/lib/apt/lists/partial"));
  });
});
