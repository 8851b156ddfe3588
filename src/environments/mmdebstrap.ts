// Owns running mmdebstrap: which apt sources, proxy and trust anchors it gets from the host, how it
// is confined so that killing pyro kills the whole build (and its mounts), and turning its failures
// into errors that say what to fix.

import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { PyroError } from "../contract/errors.js";
import { findExecutable } from "../util/which.js";

const run = promisify(execFile);

function hasEntries(text: string): boolean {
  return text.split("\n").some((l) => l.trim() !== "" && !l.trim().startsWith("#"));
}

/**
 * The host's apt source files, as mmdebstrap MIRROR arguments (it accepts one-line and deb822
 * files by path and copies them into the new root verbatim, security suite included).
 */
export async function hostAptSources(etcApt = "/etc/apt"): Promise<string[]> {
  const sources: string[] = [];
  const main = join(etcApt, "sources.list");
  const text = await readFile(main, "utf8").catch(() => "");
  if (hasEntries(text)) sources.push(main);
  const dir = join(etcApt, "sources.list.d");
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names.sort()) {
    if (!name.endsWith(".list") && !name.endsWith(".sources")) continue;
    const path = join(dir, name);
    if (hasEntries(await readFile(path, "utf8").catch(() => ""))) sources.push(path);
  }
  return sources;
}

/**
 * The host's apt proxy settings as --aptopt values: mmdebstrap runs apt with its own config, so
 * a proxy set in /etc/apt/apt.conf.d would otherwise be ignored and the archive look unreachable.
 */
export async function hostAptProxyOptions(): Promise<string[]> {
  let dump: string;
  try {
    ({ stdout: dump } = await run("apt-config", ["dump"], { timeout: 10_000 }));
  } catch {
    return [];
  }
  return dump
    .split("\n")
    .filter((l) => /^Acquire::(?:https?|ftp)::Proxy(?:::\S+)? "/.test(l))
    .map((l) => l.replace(/;\s*$/, ""));
}

/**
 * Where Debian's update-ca-certificates takes a site's own trust anchors from, on the host and in
 * every environment (each catalog entry includes ca-certificates, which creates it).
 */
export const LOCAL_CA_DIR = "/usr/local/share/ca-certificates";

export interface CaCertificate {
  /** Relative to the CA directory; the same on the host and in the root. */
  path: string;
  data: Buffer;
}

/**
 * The certificates update-ca-certificates would add from `dir`: every file named *.crt beneath it
 * (symlinks to files followed, like its `find -L`), sorted by path. A missing dir means none.
 */
export async function readCaCertificates(dir = LOCAL_CA_DIR): Promise<CaCertificate[]> {
  const names = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  const certs: CaCertificate[] = [];
  for (const path of names.filter((n) => n.endsWith(".crt")).sort()) {
    const full = join(dir, path);
    if (!(await stat(full).catch(() => undefined))?.isFile()) continue;
    certs.push({ path, data: await readFile(full) });
  }
  return certs;
}

/** One digest of a set of certificates, names included, so a renamed, added or removed one counts. */
export function caCertificatesDigest(certs: readonly CaCertificate[]): string {
  const hash = createHash("sha256");
  for (const c of certs) hash.update(`${c.path}\0${c.data.length}\0`).update(c.data);
  return `sha256:${hash.digest("hex")}`;
}

/**
 * Writes the host's certificates into `dir` for the build to copy into the root. Only public
 * certificates leave the host: a .crt that also holds a private key stops the build instead of
 * being copied into every environment (and every sandbox) built from it.
 */
export async function stageCaCertificates(certs: readonly CaCertificate[], dir: string): Promise<void> {
  for (const c of certs) {
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(c.data.toString("latin1"))) {
      throw new PyroError(
        "ENVIRONMENT_BUILD_FAILED",
        `${join(LOCAL_CA_DIR, c.path)} holds a private key; pyro copies the host's CA certificates into ` +
          "every environment and refuses to copy a key. Keep only the certificate in that file " +
          "(update-ca-certificates expects just that), then run the pull again.",
        { certificate: join(LOCAL_CA_DIR, c.path) },
      );
    }
    await mkdir(dirname(join(dir, c.path)), { recursive: true, mode: 0o755 });
    await writeFile(join(dir, c.path), c.data, { mode: 0o644 });
  }
}

/** Quotes one word for mmdebstrap's special hooks, which split their command with Perl's shellwords. */
function shellWord(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

export type MmdebstrapFailure = "archive-unreachable" | "build-failed";

const SIGNATURE_PROBLEM = /NO_PUBKEY|is not signed|signatures were invalid|signatures couldn't be verified/i;
const UNREACHABLE = [
  /Could not resolve/i,
  /Failed to fetch/i,
  /Temporary failure/i,
  /Connection refused/i,
  /Unable to connect/i,
  /Could not connect/i,
  /Connection timed out/i,
  /Network is unreachable/i,
  /No route to host/i,
  /apt-get update\b.*\bfailed/i,
];

/** Decides from mmdebstrap's output whether the archive was out of reach or the build itself broke. */
export function classifyMmdebstrapOutput(output: string): MmdebstrapFailure {
  // A key problem also makes "apt-get update ... failed", but no network fix will help it.
  if (SIGNATURE_PROBLEM.test(output)) return "build-failed";
  return UNREACHABLE.some((re) => re.test(output)) ? "archive-unreachable" : "build-failed";
}

function lastLines(output: string, n: number): string {
  return output
    .split("\n")
    .map((l) => l.trimEnd())
    .filter(Boolean)
    .slice(-n)
    .join("\n");
}

/** The PyroError for a failed mmdebstrap run; pure so the wording can be tested from samples. */
export function mmdebstrapError(
  output: string,
  ctx: { environment: string; sources: readonly string[]; exitCode: number | null },
): PyroError {
  const sources = ctx.sources.length > 0 ? ctx.sources.join(", ") : "mmdebstrap's default mirror";
  if (classifyMmdebstrapOutput(output) === "archive-unreachable") {
    return new PyroError(
      "PACKAGE_ARCHIVE_UNREACHABLE",
      `could not reach the Debian package archive while building ${ctx.environment} (apt sources: ${sources}). ` +
        "Check the host's apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d/) and proxy settings " +
        "(http_proxy, Acquire::http::Proxy); `apt-get update` on the host must work. mmdebstrap said:\n" +
        lastLines(output, 5),
      { environment: ctx.environment, sources: [...ctx.sources], exit_code: ctx.exitCode },
    );
  }
  return new PyroError(
    "ENVIRONMENT_BUILD_FAILED",
    `building ${ctx.environment} with mmdebstrap failed (exit ${ctx.exitCode ?? "by signal"}; apt sources: ${sources}). ` +
      "Nothing was installed; fix the cause below and run the pull again. mmdebstrap said:\n" +
      lastLines(output, 12),
    { environment: ctx.environment, sources: [...ctx.sources], exit_code: ctx.exitCode },
  );
}

export interface MmdebstrapRun {
  environment: string;
  suite: string;
  packages: readonly string[];
  /** Must not exist yet; its parent must. */
  target: string;
  sources: readonly string[];
  aptOptions?: readonly string[];
  /** mmdebstrap's scratch space; put inside the staging dir so a kill leaves nothing elsewhere. */
  tmpDir: string;
  /** Certificates staged by stageCaCertificates: added to the root's trust anchors (copied into its
   * LOCAL_CA_DIR, then update-ca-certificates) so that TLS inside trusts what the host trusts. */
  caDir?: string;
  signal?: AbortSignal;
  /** Receives each "I: ..." progress line, without the prefix. */
  onInfo?: (line: string) => void;
}

export function mmdebstrapArgs(
  r: Pick<MmdebstrapRun, "suite" | "packages" | "target" | "sources" | "aptOptions" | "caDir">,
): string[] {
  const caHooks = r.caDir
    ? [
        `--customize-hook=sync-in ${shellWord(r.caDir)} ${LOCAL_CA_DIR}`,
        '--customize-hook=chroot "$1" update-ca-certificates',
      ]
    : [];
  return [
    "--variant=minbase",
    `--include=${r.packages.join(",")}`,
    ...(r.aptOptions ?? []).map((o) => `--aptopt=${o}`),
    ...caHooks,
    r.suite,
    r.target,
    ...r.sources,
  ];
}

/**
 * The command line that runs mmdebstrap so nothing outlives pyro: setpriv makes the build die
 * with pyro, and (as root) unshare gives it a private mount namespace, so its bind mounts of /dev,
 * /proc and /sys vanish with it, and a PID namespace, so apt and dpkg die with it too.
 */
export function confinedCommand(mmdebstrap: string, args: readonly string[], isRoot: boolean): string[] {
  const deathsig = ["setpriv", "--pdeathsig", "KILL", "--"];
  if (!isRoot) return [...deathsig, mmdebstrap, ...args];
  return [
    ...deathsig,
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "--pid",
    "--fork",
    "--kill-child=SIGKILL",
    "--",
    mmdebstrap,
    ...args,
  ];
}

export function mmdebstrapMissing(): PyroError {
  return new PyroError(
    "HOST_REQUIREMENT_MISSING",
    "mmdebstrap is not installed; run: apt-get install mmdebstrap (npm run quickstart does this)",
  );
}

export async function runMmdebstrap(r: MmdebstrapRun): Promise<void> {
  const mmdebstrap = await findExecutable("mmdebstrap");
  if (!mmdebstrap) throw mmdebstrapMissing();
  r.signal?.throwIfAborted();
  const isRoot = process.getuid?.() === 0;
  const [cmd, ...args] = confinedCommand(mmdebstrap, mmdebstrapArgs(r), isRoot);

  const tail: string[] = [];
  const keep = (line: string) => {
    tail.push(line);
    if (tail.length > 200) tail.shift();
  };
  const child = spawn(cmd!, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, LC_ALL: "C", TMPDIR: r.tmpDir, DEBIAN_FRONTEND: "noninteractive" },
  });
  const onAbort = () => child.kill("SIGKILL");
  r.signal?.addEventListener("abort", onAbort, { once: true });

  const lineReader = (isStderr: boolean) => {
    let partial = "";
    return (chunk: Buffer) => {
      const parts = (partial + chunk.toString("utf8")).split(/\r?\n|\r/);
      partial = parts.pop() ?? "";
      for (const line of parts) {
        keep(line);
        if (isStderr && line.startsWith("I: ")) r.onInfo?.(line.slice(3));
      }
    };
  };
  child.stdout.on("data", lineReader(false));
  child.stderr.on("data", lineReader(true));

  const { code, signal, spawnError } = await new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    spawnError?: Error;
  }>((resolve) => {
    child.once("error", (err) => resolve({ code: null, signal: null, spawnError: err }));
    child.once("close", (code, signal) => resolve({ code, signal }));
  });
  r.signal?.removeEventListener("abort", onAbort);

  if (r.signal?.aborted) throw r.signal.reason;
  if (spawnError) {
    const missing = (spawnError as NodeJS.ErrnoException).code === "ENOENT";
    throw new PyroError(
      "HOST_REQUIREMENT_MISSING",
      missing
        ? `${cmd} is not installed; run: apt-get install util-linux`
        : `could not start mmdebstrap: ${spawnError.message}`,
    );
  }
  if (code === 0) return;
  const output = tail.join("\n");
  throw mmdebstrapError(signal ? `${output}\nkilled by ${signal}` : output, {
    environment: r.environment,
    sources: r.sources,
    exitCode: code,
  });
}

export { findExecutable };
