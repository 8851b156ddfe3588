// Owns the environment catalog: which environments pyro can build, what goes into each, how long a
// build that a sandbox call starts may take, and the on-disk name (slug) each version is cached under.
import { PyroError } from "../contract/errors.js";

/**
 * The bound on a build that `run` or `workspace create` starts because the environment is missing
 * (an explicit `pyro env pull` has none: someone is watching it and can stop it). A caller such as
 * an MCP client is waiting on that call, so it must end. Builds take 30 s to a few minutes; 15 min
 * leaves room for a slow mirror or disk, and equals how long a pull waits for another's lock.
 */
export const ENVIRONMENT_BUILD_TIMEOUT_MS = 15 * 60_000;

export interface CatalogEntry {
  readonly name: string;
  readonly description: string;
  /** Bumped whenever the recipe changes, so an old cached build is never mistaken for the new one. */
  readonly version: string;
  readonly suite: string;
  /** Always includes ca-certificates: every root gets the host's own CA certificates added to its
   * trust store at build (see mmdebstrap.ts), which needs update-ca-certificates. */
  readonly packages: readonly string[];
}

const DEBIAN_12_PACKAGES = [
  "ca-certificates",
  "git",
  "curl",
  "procps",
  "less",
  "vim-tiny",
  "python3",
  "patch",
  "diffutils",
  "file",
  "xz-utils",
  "unzip",
  "openssh-client",
  "iproute2",
  "iputils-ping",
] as const;

export const CATALOG: readonly CatalogEntry[] = Object.freeze([
  {
    name: "debian:12",
    description: "Debian 12 with Git and common tools for agent workflows.",
    version: "1",
    suite: "bookworm",
    packages: DEBIAN_12_PACKAGES,
  },
  {
    name: "debian:12-base",
    description: "Minimal Debian 12 for shell and core Unix tools.",
    version: "1",
    suite: "bookworm",
    packages: ["ca-certificates", "procps", "less"],
  },
  {
    name: "debian:12-build",
    description: "Debian 12 with Git, build tools, Python (pip, venv, pytest) and Node.js (npm, npx).",
    version: "2",
    suite: "bookworm",
    packages: [
      ...DEBIAN_12_PACKAGES,
      "build-essential",
      "pkg-config",
      "python3-pip",
      "python3-venv",
      "python3-pytest",
      "nodejs",
      // npm brings npx; installing it with apt inside a workspace takes many minutes (a few hundred
      // node-* packages), so it is built in once.
      "npm",
      "make",
      "cmake",
    ],
  },
]);

export function catalogEntry(name: string): CatalogEntry {
  const entry = CATALOG.find((e) => e.name === name);
  if (!entry) {
    throw new PyroError(
      "ENVIRONMENT_UNKNOWN",
      `unknown environment ${JSON.stringify(name)}; choose one of: ${CATALOG.map((e) => e.name).join(", ")} (see: pyro env list)`,
      { environment: name, catalog: CATALOG.map((e) => e.name) },
    );
  }
  return entry;
}

/**
 * The directory name of one version of an environment. Colons become underscores because the
 * directory ends up in overlayfs mount options, where ':' separates lower directories.
 */
export function slugOf(entry: Pick<CatalogEntry, "name" | "version">): string {
  return `${entry.name.replaceAll(":", "_")}-v${entry.version}`;
}

/** The inverse of slugOf for names found on disk; undefined when the name is not a slug. */
export function parseSlug(dirName: string): { base: string; version: string } | undefined {
  const m = /^([A-Za-z0-9_.-]+)-v([A-Za-z0-9.]+)$/.exec(dirName);
  if (!m || dirName.startsWith(".")) return undefined;
  return { base: m[1]!, version: m[2]! };
}
