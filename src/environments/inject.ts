// Owns the guest agent's footprint in an environment: /opt/pyro with its own Node.js, the shared
// libraries and loader that Node needs, tini as PID 1, the agent bundle, and the digest that says
// whether an environment's injected agent matches this pyro.
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { access, chmod, copyFile, mkdir, readFile, realpath, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { promisify } from "node:util";
import { PyroError } from "../contract/errors.js";
import { AGENT_BUNDLE, PYRO_VERSION } from "../version.js";
import { removeTree, swapDirectory } from "./tree.js";

const run = promisify(execFile);

export const TINI_STATIC = "/usr/bin/tini-static";
/** Where the injected tree lives inside an environment's root. */
export const AGENT_DIR = "opt/pyro";

/**
 * How a sandbox starts its agent. Node runs through the copied loader with the copied libraries so
 * it works whatever libc the environment ships. Note that the agent's process.execPath is
 * therefore the loader, not node.
 */
export const AGENT_ARGV: readonly string[] = Object.freeze([
  "/opt/pyro/bin/tini",
  "-s",
  "--",
  "/opt/pyro/lib/ld-linux-x86-64.so.2",
  "--library-path",
  "/opt/pyro/lib",
  "/opt/pyro/bin/node",
  "/opt/pyro/agent/pyro-agent.mjs",
]);

export interface AgentVersion {
  agent_version: string;
  agent_digest: string;
}

export interface InjectOptions {
  /** The agent bundle to inject; defaults to AGENT_BUNDLE (built by `npm run build`). */
  bundle?: string;
  tini?: string;
}

export interface SharedLibrary {
  /** The name the loader looks for (the soname ldd printed). */
  name: string;
  path: string;
}

/**
 * Parses `ldd` output into the libraries to copy and the ELF interpreter. The vDSO has no file
 * and is skipped; a "not found" line means the host's node cannot run, let alone be copied.
 */
export function parseLdd(output: string): { libraries: SharedLibrary[]; interpreter: string | undefined } {
  const libraries: SharedLibrary[] = [];
  let interpreter: string | undefined;
  for (const raw of output.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const arrow = /^(\S+)\s+=>\s+(.*?)\s*(?:\(0x[0-9a-f]+\))?$/.exec(line);
    if (arrow) {
      const [, name, target] = arrow;
      if (target === "not found") {
        throw new PyroError(
          "HOST_REQUIREMENT_MISSING",
          `node needs ${name}, which the host does not have (ldd: ${line})`,
        );
      }
      if (target?.startsWith("/")) libraries.push({ name: name!, path: target });
      continue;
    }
    const bare = /^(\/\S+)\s+\(0x[0-9a-f]+\)$/.exec(line);
    if (bare) interpreter = bare[1];
  }
  return { libraries, interpreter };
}

let nodeDeps: Promise<{ node: string; libraries: SharedLibrary[]; interpreter: string }> | undefined;

function resolveNodeDeps(): Promise<{ node: string; libraries: SharedLibrary[]; interpreter: string }> {
  nodeDeps ??= (async () => {
    const node = await realpath(process.execPath);
    let stdout: string;
    try {
      ({ stdout } = await run("ldd", [node]));
    } catch (err) {
      throw new PyroError("HOST_REQUIREMENT_MISSING", `cannot list the libraries of ${node} with ldd: ${String(err)}`);
    }
    const { libraries, interpreter } = parseLdd(stdout);
    if (!interpreter) {
      throw new PyroError(
        "HOST_REQUIREMENT_MISSING",
        `${node} has no ELF interpreter in ldd's output; pyro needs a dynamically linked x86-64 node`,
      );
    }
    return { node, libraries, interpreter };
  })();
  nodeDeps.catch(() => {
    nodeDeps = undefined;
  });
  return nodeDeps;
}

async function readRequired(path: string, missing: () => PyroError): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw missing();
    throw err;
  }
}

function bundleMissing(bundle: string): PyroError {
  return new PyroError(
    "HOST_REQUIREMENT_MISSING",
    `the guest agent bundle ${bundle} does not exist; run: npm run build`,
  );
}

function tiniMissing(tini: string): PyroError {
  return new PyroError("HOST_REQUIREMENT_MISSING", `${tini} is missing; run: apt-get install tini`);
}

/** Fails early (before a long build) when a file injection will need is absent. */
export async function checkInjectable(opts: InjectOptions = {}): Promise<void> {
  const bundle = opts.bundle ?? AGENT_BUNDLE;
  const tini = opts.tini ?? TINI_STATIC;
  await access(tini).catch(() => {
    throw tiniMissing(tini);
  });
  await access(bundle).catch(() => {
    throw bundleMissing(bundle);
  });
}

function agentDigest(bundle: Buffer, tini: Buffer, natives: Array<Buffer | undefined>): string {
  const hash = createHash("sha256").update(bundle).update(process.version).update(tini);
  for (const native of natives) if (native) hash.update(native);
  return `sha256:${hash.digest("hex")}`;
}

/** Native files built beside the bundle and injected with it, each optional: the agent's
 * posix_spawn addon (without it the agent forks) and the statx shim gvisor sandboxes preload. */
const SPAWN_ADDON = "pyro-spawn.node";
export const STATX_SHIM = "pyro-statx-compat.so";
const NATIVES = [SPAWN_ADDON, STATX_SHIM] as const;
function readNatives(bundle: string): Promise<Array<Buffer | undefined>> {
  return Promise.all(NATIVES.map((name) => readFile(join(dirname(bundle), name)).catch(() => undefined)));
}

const digestMemo = new Map<string, { key: string; digest: string }>();

/**
 * The digest an environment's agent must have to count as current. Memoised on the inputs'
 * size and mtime so a long-lived server notices a rebuilt bundle without rehashing every call.
 */
export async function currentAgentDigest(opts: InjectOptions = {}): Promise<string> {
  const bundle = opts.bundle ?? AGENT_BUNDLE;
  const tini = opts.tini ?? TINI_STATIC;
  const [bs, ts] = await Promise.all([
    stat(bundle).catch(() => {
      throw bundleMissing(bundle);
    }),
    stat(tini).catch(() => {
      throw tiniMissing(tini);
    }),
  ]);
  const natives = await Promise.all(NATIVES.map((n) => stat(join(dirname(bundle), n)).catch(() => undefined)));
  const key = `${bs.size}:${bs.mtimeMs}:${ts.size}:${ts.mtimeMs}:${natives.map((n) => `${n?.size}:${n?.mtimeMs}`).join(":")}:${process.version}`;
  const memo = digestMemo.get(`${bundle}\0${tini}`);
  if (memo?.key === key) return memo.digest;
  const digest = agentDigest(
    await readRequired(bundle, () => bundleMissing(bundle)),
    await readRequired(tini, () => tiniMissing(tini)),
    await readNatives(bundle),
  );
  digestMemo.set(`${bundle}\0${tini}`, { key, digest });
  return digest;
}

/** The agent version file of an installed root, or undefined when absent or unreadable. */
export async function readAgentVersion(rootDir: string): Promise<AgentVersion | undefined> {
  try {
    const v = JSON.parse(await readFile(join(rootDir, AGENT_DIR, "VERSION"), "utf8")) as Partial<AgentVersion>;
    if (typeof v.agent_version === "string" && typeof v.agent_digest === "string") {
      return { agent_version: v.agent_version, agent_digest: v.agent_digest };
    }
  } catch {}
  return undefined;
}

/**
 * Copies the agent and its runtime into rootDir/opt/pyro. The new tree is assembled beside the old
 * one and swapped in by rename, so re-injecting into an installed environment never leaves a
 * half-copied agent, and a running sandbox keeps the files it already opened.
 */
export async function injectAgent(rootDir: string, opts: InjectOptions = {}): Promise<AgentVersion> {
  const bundlePath = opts.bundle ?? AGENT_BUNDLE;
  const tiniPath = opts.tini ?? TINI_STATIC;
  const bundle = await readRequired(bundlePath, () => bundleMissing(bundlePath));
  const tini = await readRequired(tiniPath, () => tiniMissing(tiniPath));
  const natives = await readNatives(bundlePath);
  const { node, libraries, interpreter } = await resolveNodeDeps();

  const optDir = join(rootDir, "opt");
  const final = join(optDir, "pyro");
  const tag = `${process.pid}-${randomBytes(4).toString("hex")}`;
  const staging = join(optDir, `.pyro-new-${tag}`);
  const old = join(optDir, `.pyro-old-${tag}`);
  await mkdir(optDir, { recursive: true });
  try {
    for (const d of ["bin", "lib", "agent"]) await mkdir(join(staging, d), { recursive: true, mode: 0o755 });
    // Copies, not hard links: the cached environment must not change when the host's node does.
    await Promise.all([
      copyFile(node, join(staging, "bin", "node")),
      writeFile(join(staging, "bin", "tini"), tini),
      writeFile(join(staging, "agent", "pyro-agent.mjs"), bundle),
      ...NATIVES.flatMap((name, i) => {
        const data = natives[i];
        return data ? [writeFile(join(staging, "agent", name), data, { mode: 0o755 })] : [];
      }),
      ...libraries.map((lib) => copyFile(lib.path, join(staging, "lib", lib.name))),
      copyFile(interpreter, join(staging, "lib", basename(interpreter))),
    ]);
    await Promise.all([
      chmod(join(staging, "bin", "node"), 0o755),
      chmod(join(staging, "bin", "tini"), 0o755),
      chmod(join(staging, "agent", "pyro-agent.mjs"), 0o644),
      ...libraries.map((lib) => chmod(join(staging, "lib", lib.name), 0o755)),
      chmod(join(staging, "lib", basename(interpreter)), 0o755),
    ]);
    const version: AgentVersion = { agent_version: PYRO_VERSION, agent_digest: agentDigest(bundle, tini, natives) };
    await writeFile(join(staging, "VERSION"), `${JSON.stringify(version)}\n`, { mode: 0o644 });
    await chmod(staging, 0o755);

    await swapDirectory(staging, final, old);
    return version;
  } catch (err) {
    await removeTree(staging).catch(() => {});
    throw err;
  }
}
