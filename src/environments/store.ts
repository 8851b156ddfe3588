// Owns the environment cache: what counts as installed, building an environment into a staging
// directory and renaming it into place, repairing broken or interrupted builds, refreshing a stale
// agent, rebuilding a root whose trust anchors the host has since changed, and pruning what is no
// longer needed. Other modules only ever read a finished rootfs.

import { randomBytes } from "node:crypto";
import { access, chmod, lstat, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import writeFileAtomic from "write-file-atomic";
import { PyroError } from "../contract/errors.js";
import {
  type EnvironmentInspect,
  type EnvironmentList,
  EnvironmentManifest,
  type EnvironmentPruneResult,
  type EnvironmentPullResult,
} from "../contract/schemas.js";
import { privilegeUnavailable } from "../rootless/mode.js";
import { PYRO_VERSION } from "../version.js";
import { CATALOG, type CatalogEntry, catalogEntry, parseSlug, slugOf } from "./catalog.js";
import { AGENT_DIR, checkInjectable, currentAgentDigest, injectAgent, readAgentVersion } from "./inject.js";
import { acquireLock, type LockHandle, processAlive, tryAcquireLock } from "./lock.js";
import {
  caCertificatesDigest,
  findExecutable,
  hostAptProxyOptions,
  hostAptSources,
  LOCAL_CA_DIR,
  mmdebstrapMissing,
  readCaCertificates,
  runMmdebstrap,
  stageCaCertificates,
} from "./mmdebstrap.js";
import { digestTree, diskUsage, removeTree, swapDirectory } from "./tree.js";

export interface InstalledEnvironment {
  name: string;
  /** The environment's root filesystem (read-only for everyone but this store). */
  rootDir: string;
  manifest: EnvironmentManifest;
}

export interface PullProgress {
  phase(name: string, detail?: string): void;
}

export interface EnvironmentStoreOptions {
  /** mmdebstrap MIRROR arguments (source files or one-line entries); default: the host's apt sources. */
  sources?: readonly string[];
  /** The agent bundle to inject; default AGENT_BUNDLE. */
  agentBundle?: string;
  /** How long a pull waits for another pull of the same environment. */
  lockTimeoutMs?: number;
  /** The host's own CA certificates, copied into every root; default LOCAL_CA_DIR. */
  caDir?: string;
}

export interface PullOptions {
  progress?: PullProgress;
  /** Rebuild even when a valid copy is installed; the old copy stays usable until the swap. */
  force?: boolean;
  signal?: AbortSignal;
  /** Fail with ENVIRONMENT_BUILD_FAILED when the pull (lock wait included) takes longer. */
  timeoutMs?: number;
}

/** Stale: a whole build that no longer matches the host (its CA certificates changed); it keeps
 * serving the sandboxes already on it, and the next pull rebuilds it and swaps it in. */
type InstallState =
  | { kind: "installed"; manifest: EnvironmentManifest }
  | { kind: "absent" }
  | { kind: "invalid"; reason: string }
  | { kind: "stale"; reason: string };

const PARTIAL_RE = /^\.partial-(.+)-(\d+)-([0-9a-f]+)$/;
const LOCK_RE = /^\.(.+)\.lock$/;

function parsePartial(name: string): { slug: string; pid: number } | undefined {
  const m = PARTIAL_RE.exec(name);
  return m ? { slug: m[1]!, pid: Number(m[2]) } : undefined;
}

function timedOut(name: string, timeoutMs: number): PyroError {
  const bound = timeoutMs >= 60_000 ? `${Math.round(timeoutMs / 60_000)} min` : `${Math.round(timeoutMs / 1000)} s`;
  return new PyroError(
    "ENVIRONMENT_BUILD_FAILED",
    `building ${name} did not finish within ${bound}, the bound on a build that a sandbox call starts; ` +
      `it was stopped and nothing was installed. Build it ahead of time, where no bound applies: ` +
      `pyro env pull ${name} (then pyro prepare ${name} to warm it). If downloads are slow, check the host's ` +
      "apt mirror and proxy (apt-get update on the host must work).",
    { environment: name, timeout_ms: timeoutMs, timed_out: true },
  );
}

function cancelled(name: string): PyroError {
  return new PyroError("ENVIRONMENT_BUILD_FAILED", `the pull of ${name} was cancelled; nothing was installed`, {
    environment: name,
    cancelled: true,
  });
}

export class EnvironmentStore {
  /** Where every environment lives: <cacheDir>/environments. */
  readonly dir: string;
  readonly #sources: readonly string[] | undefined;
  readonly #bundle: string | undefined;
  readonly #lockTimeoutMs: number | undefined;
  readonly #caDir: string;

  constructor(cacheDir: string, opts: EnvironmentStoreOptions = {}) {
    this.dir = join(cacheDir, "environments");
    this.#sources = opts.sources;
    this.#bundle = opts.agentBundle;
    this.#lockTimeoutMs = opts.lockTimeoutMs;
    this.#caDir = opts.caDir ?? LOCAL_CA_DIR;
  }

  async list(): Promise<EnvironmentList> {
    const environments = await Promise.all(
      CATALOG.map(async (entry) => ({
        ...describe(entry),
        installed: (await this.#state(entry)).kind === "installed",
      })),
    );
    return { catalog_version: PYRO_VERSION, count: environments.length, environments };
  }

  async inspect(name: string): Promise<EnvironmentInspect> {
    const entry = catalogEntry(name);
    const state = await this.#state(entry);
    if (state.kind !== "installed") {
      return { ...describe(entry), installed: false, path: null, manifest: null, agent_current: false };
    }
    return {
      ...describe(entry),
      installed: true,
      path: this.#envDir(entry),
      manifest: state.manifest,
      agent_current: await this.#agentCurrent(entry).catch(() => false),
    };
  }

  async pull(name: string, opts: PullOptions = {}): Promise<EnvironmentPullResult> {
    if (opts.timeoutMs === undefined) return this.#pull(name, opts);
    // The deadline aborts like a cancel does (mmdebstrap killed, staging removed), then says why.
    const deadline = AbortSignal.timeout(opts.timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline;
    try {
      return await this.#pull(name, { ...opts, signal });
    } catch (err) {
      if (deadline.aborted && !opts.signal?.aborted) throw timedOut(name, opts.timeoutMs);
      throw err;
    }
  }

  async #pull(name: string, opts: PullOptions): Promise<EnvironmentPullResult> {
    const started = performance.now();
    const entry = catalogEntry(name);
    const { progress, signal } = opts;
    const finish = async (pulled: boolean): Promise<EnvironmentPullResult> => ({
      ...(await this.inspect(name)),
      pulled,
      duration_ms: Math.round(performance.now() - started),
    });

    if (!opts.force && (await this.#state(entry)).kind === "installed") {
      if (!(await this.#agentCurrent(entry))) await this.#refreshAgent(entry, progress, signal);
      return finish(false);
    }

    // Everything a build needs is checked before the lock and the long bootstrap.
    const denied = privilegeUnavailable();
    if (denied) throw new PyroError("HOST_REQUIREMENT_MISSING", `cannot build ${name}: ${denied}`);
    if (!(await findExecutable("mmdebstrap"))) throw mmdebstrapMissing();
    await checkInjectable({ bundle: this.#bundle });
    const sources = this.#sources ?? (await hostAptSources());
    progress?.phase(
      "resolve",
      `${name} v${entry.version}: ${entry.suite} + ${entry.packages.length} packages from ${sources.length > 0 ? sources.join(", ") : "mmdebstrap's default mirror"}`,
    );

    await mkdir(this.dir, { recursive: true });
    await this.#removeDeadPartials();
    const lock = await this.#lock(entry, progress, signal);
    try {
      const state = await this.#state(entry);
      if (state.kind === "installed" && !opts.force) {
        // Another pull finished it while this one waited for the lock.
        if (!(await this.#agentCurrent(entry))) await this.#inject(entry, progress);
        return finish(false);
      }
      // Holding the lock means no build of this slug is running: any partial of it is debris.
      await this.#removePartials((p) => p.slug === slugOf(entry));
      if (state.kind === "invalid") {
        progress?.phase("repair", `removing the broken copy at ${this.#envDir(entry)} (${state.reason})`);
        await removeTree(this.#envDir(entry));
      }
      // A stale copy stays in place (sandboxes may be running on it) until the new one is swapped in.
      if (state.kind === "stale") progress?.phase("rebuild", state.reason);
      await this.#build(entry, sources, progress, signal);
    } finally {
      await lock.release();
    }
    return finish(true);
  }

  async require(name: string): Promise<InstalledEnvironment> {
    const entry = catalogEntry(name);
    let state = await this.#state(entry);
    if (state.kind !== "installed") {
      throw new PyroError(
        "ENVIRONMENT_NOT_INSTALLED",
        state.kind === "stale"
          ? `environment ${name} needs a rebuild: ${state.reason}; run: pyro env pull ${name}`
          : `environment ${name} is not installed; run: pyro env pull ${name}`,
        { environment: name, ...(state.kind === "absent" ? {} : { reason: state.reason }) },
      );
    }
    if (!(await this.#agentCurrent(entry))) {
      await this.#refreshAgent(entry);
      state = await this.#state(entry);
      if (state.kind !== "installed") {
        throw new PyroError(
          "ENVIRONMENT_NOT_INSTALLED",
          `environment ${name} is not installed; run: pyro env pull ${name}`,
        );
      }
    }
    return { name, rootDir: this.#rootDir(entry), manifest: state.manifest };
  }

  /** Every installed environment as it stands (no agent refresh, unlike require). */
  async installed(): Promise<InstalledEnvironment[]> {
    const found: InstalledEnvironment[] = [];
    for (const entry of CATALOG) {
      const state = await this.#state(entry);
      if (state.kind === "installed")
        found.push({ name: entry.name, rootDir: this.#rootDir(entry), manifest: state.manifest });
    }
    return found;
  }

  async prune(): Promise<EnvironmentPruneResult> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { removed: [], freed_bytes: 0 };
      throw err;
    }
    const removed: string[] = [];
    let freed = 0;
    const remove = async (dirName: string) => {
      const path = join(this.dir, dirName);
      freed += await diskUsage(path);
      await removeTree(path);
      removed.push(dirName);
    };
    const current = new Map(CATALOG.map((e) => [slugOf(e), e]));
    // A stale copy is current until its rebuild replaces it; sandboxes may be running on it.
    const inUse = async (e: CatalogEntry) => ["installed", "stale"].includes((await this.#state(e)).kind);

    for (const name of names.sort()) {
      const partial = parsePartial(name);
      if (partial) {
        if (!processAlive(partial.pid)) {
          await remove(name);
          continue;
        }
        // A live pid may be a recycled one: if nobody holds the slug's lock, nobody is building.
        const lock = await tryAcquireLock(this.#lockPath(partial.slug));
        if (lock) {
          try {
            await remove(name);
          } finally {
            await lock.release();
          }
        }
        continue;
      }
      const slug = parseSlug(name);
      if (!slug) continue;
      const entry = current.get(name);
      if (entry && (await inUse(entry))) continue;
      // Old versions, environments dropped from the catalog, and broken copies of current ones.
      const lock = await tryAcquireLock(this.#lockPath(name));
      if (!lock) continue;
      try {
        if (entry && (await inUse(entry))) continue;
        await remove(name);
      } finally {
        await lock.release();
      }
    }
    // Lock files left by killed pulls: taking one over and releasing it deletes it.
    for (const name of names) {
      const m = LOCK_RE.exec(name);
      if (!m) continue;
      const lock = await tryAcquireLock(join(this.dir, name));
      await lock?.release();
    }
    return { removed, freed_bytes: freed };
  }

  #envDir(entry: CatalogEntry): string {
    return join(this.dir, slugOf(entry));
  }

  #rootDir(entry: CatalogEntry): string {
    return join(this.#envDir(entry), "rootfs");
  }

  #lockPath(slug: string): string {
    return join(this.dir, `.${slug}.lock`);
  }

  /** Installed means: the final dir, a manifest the contract accepts for this entry, and an agent. */
  async #state(entry: CatalogEntry): Promise<InstallState> {
    const dir = this.#envDir(entry);
    try {
      await lstat(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "absent" };
      throw err;
    }
    let raw: string;
    try {
      raw = await readFile(join(dir, "manifest.json"), "utf8");
    } catch {
      return { kind: "invalid", reason: "manifest.json is missing" };
    }
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      return { kind: "invalid", reason: "manifest.json is not valid JSON" };
    }
    const parsed = EnvironmentManifest.safeParse(json);
    if (!parsed.success) return { kind: "invalid", reason: "manifest.json does not match the manifest schema" };
    const manifest = parsed.data;
    if (manifest.name !== entry.name || manifest.version !== entry.version) {
      return { kind: "invalid", reason: `manifest.json describes ${manifest.name} v${manifest.version}` };
    }
    try {
      await access(join(dir, "rootfs", AGENT_DIR, "VERSION"));
    } catch {
      return { kind: "invalid", reason: `rootfs/${AGENT_DIR}/VERSION is missing` };
    }
    // The root's copy of the host's certificates is the record of what it was built with: nothing
    // else to keep in step, and a root built before pyro copied them compares as "none".
    const [host, root] = await Promise.all([
      readCaCertificates(this.#caDir),
      readCaCertificates(join(dir, "rootfs", LOCAL_CA_DIR)),
    ]);
    if (caCertificatesDigest(host) !== caCertificatesDigest(root)) {
      return {
        kind: "stale",
        reason:
          `the host's CA certificates (${host.length} in ${this.#caDir}) are not the ${root.length} it was ` +
          "built with",
      };
    }
    return { kind: "installed", manifest };
  }

  async #agentCurrent(entry: CatalogEntry): Promise<boolean> {
    const injected = await readAgentVersion(this.#rootDir(entry));
    return injected?.agent_digest === (await currentAgentDigest({ bundle: this.#bundle }));
  }

  #lock(entry: CatalogEntry, progress?: PullProgress, signal?: AbortSignal): Promise<LockHandle> {
    return acquireLock(this.#lockPath(slugOf(entry)), {
      signal,
      timeoutMs: this.#lockTimeoutMs,
      onWait: (pid) => progress?.phase("wait", `another pull of ${entry.name} is running (pid ${pid}); waiting for it`),
    }).catch((err: unknown) => {
      if (signal?.aborted) throw cancelled(entry.name);
      throw err;
    });
  }

  async #refreshAgent(entry: CatalogEntry, progress?: PullProgress, signal?: AbortSignal): Promise<void> {
    const lock = await this.#lock(entry, progress, signal);
    try {
      if ((await this.#state(entry)).kind !== "installed" || (await this.#agentCurrent(entry))) return;
      await this.#inject(entry, progress);
    } finally {
      await lock.release();
    }
  }

  /** Records what an engine built from an installed environment (see EnvironmentManifest.engines). */
  async recordEngineArtifacts(name: string, engine: string, artifacts: Record<string, unknown>): Promise<void> {
    const entry = catalogEntry(name);
    const lock = await this.#lock(entry);
    try {
      const state = await this.#state(entry);
      if (state.kind !== "installed") return;
      await this.#writeManifest(entry, {
        ...state.manifest,
        engines: { ...state.manifest.engines, [engine]: artifacts },
      });
    } finally {
      await lock.release();
    }
  }

  async #writeManifest(entry: CatalogEntry, manifest: EnvironmentManifest): Promise<void> {
    const path = join(this.#envDir(entry), "manifest.json");
    await writeFileAtomic(path, `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o644 });
  }

  /** Re-injects into an installed environment and records the new agent in its manifest. */
  async #inject(entry: CatalogEntry, progress?: PullProgress): Promise<void> {
    progress?.phase("inject-agent", `refreshing the agent in ${entry.name}`);
    const state = await this.#state(entry);
    if (state.kind !== "installed") return;
    const agent = await injectAgent(this.#rootDir(entry), { bundle: this.#bundle });
    await this.#writeManifest(entry, { ...state.manifest, ...agent });
  }

  async #build(
    entry: CatalogEntry,
    sources: readonly string[],
    progress?: PullProgress,
    signal?: AbortSignal,
  ): Promise<void> {
    const started = performance.now();
    const slug = slugOf(entry);
    const staging = join(this.dir, `.partial-${slug}-${process.pid}-${randomBytes(6).toString("hex")}`);
    const rootfs = join(staging, "rootfs");
    const final = this.#envDir(entry);
    await mkdir(join(staging, "tmp"), { recursive: true });
    try {
      const certificates = await readCaCertificates(this.#caDir);
      const caDir = certificates.length > 0 ? join(staging, "tmp", "ca-certificates") : undefined;
      if (caDir) {
        await stageCaCertificates(certificates, caDir);
        progress?.phase("trust", `${certificates.length} CA certificate(s) from ${this.#caDir}`);
      }
      progress?.phase("bootstrap", `mmdebstrap --variant=minbase ${entry.suite}`);
      await runMmdebstrap({
        environment: entry.name,
        suite: entry.suite,
        packages: entry.packages,
        target: rootfs,
        sources,
        aptOptions: await hostAptProxyOptions(),
        tmpDir: join(staging, "tmp"),
        caDir,
        signal,
        onInfo: (line) => progress?.phase("bootstrap", line),
      });
      signal?.throwIfAborted();
      await configureRoot(rootfs);

      progress?.phase("inject-agent");
      const agent = await injectAgent(rootfs, { bundle: this.#bundle });
      signal?.throwIfAborted();

      progress?.phase("digest");
      const tree = await digestTree(rootfs, { exclude: [AGENT_DIR] });
      signal?.throwIfAborted();

      const manifest: EnvironmentManifest = {
        name: entry.name,
        version: entry.version,
        suite: entry.suite,
        packages: [...entry.packages],
        created_at: new Date().toISOString(),
        ...agent,
        rootfs_digest: tree.digest,
        rootfs_size_bytes: tree.sizeBytes,
        rootfs_file_count: tree.fileCount,
        build_seconds: Math.round((performance.now() - started) / 100) / 10,
      };
      await rm(join(staging, "tmp"), { recursive: true, force: true });
      await writeFile(join(staging, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o644 });

      progress?.phase("install", final);
      // A forced rebuild swaps the old copy out under a partial name, so a crash between the two
      // renames leaves debris that the next pull clears, never a half-old, half-new environment.
      const old = join(this.dir, `.partial-${slug}-${process.pid}-${randomBytes(6).toString("hex")}`);
      await swapDirectory(staging, final, old);
    } catch (err) {
      await removeTree(staging).catch(() => {});
      if (signal?.aborted) throw cancelled(entry.name);
      throw err;
    }
  }

  /** Partials whose builder died: a SIGKILLed pull cannot clean up after itself. */
  async #removeDeadPartials(): Promise<void> {
    await this.#removePartials((p) => !processAlive(p.pid));
  }

  async #removePartials(which: (p: { slug: string; pid: number }) => boolean): Promise<void> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    for (const name of names) {
      const p = parsePartial(name);
      if (p && which(p)) await removeTree(join(this.dir, name));
    }
  }
}

function describe(entry: CatalogEntry) {
  return {
    name: entry.name,
    description: entry.description,
    version: entry.version,
    packages: [...entry.packages],
  };
}

/**
 * Makes the bootstrapped root a sandbox root: its own identity instead of the host's (mmdebstrap
 * copies the host's hostname and resolv.conf), slirp4netns's DNS, an empty /workspace, and no apt
 * caches, which only cost space.
 */
export async function configureRoot(rootfs: string): Promise<void> {
  await writeFile(join(rootfs, "etc", "hostname"), "pyro\n");
  await writeFile(
    join(rootfs, "etc", "hosts"),
    "127.0.0.1\tlocalhost pyro\n::1\tlocalhost ip6-localhost ip6-loopback\n",
  );
  // Replace rather than write through: the host's copy may be a symlink (systemd-resolved).
  await rm(join(rootfs, "etc", "resolv.conf"), { force: true });
  await writeFile(join(rootfs, "etc", "resolv.conf"), "nameserver 10.0.2.3\n");
  await mkdir(join(rootfs, "workspace"), { recursive: true });
  await Promise.all(["etc/hostname", "etc/hosts", "etc/resolv.conf"].map((f) => chmod(join(rootfs, f), 0o644)));
  await chmod(join(rootfs, "workspace"), 0o755);

  const archives = join(rootfs, "var", "cache", "apt", "archives");
  for (const name of await readdir(archives).catch(() => [] as string[])) {
    if (name.endsWith(".deb")) await rm(join(archives, name), { force: true });
  }
  // apt keeps its lock and partial/ here and expects them to exist.
  const lists = join(rootfs, "var", "lib", "apt", "lists");
  for (const name of await readdir(lists).catch(() => [] as string[])) {
    if (name !== "lock" && name !== "partial") await rm(join(lists, name), { recursive: true, force: true });
  }
}
