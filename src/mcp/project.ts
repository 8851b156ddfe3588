// Owns project-aware startup of `pyro mcp serve`: which source seeds a workspace created without
// `seed_path` — the git checkout the server was started in (its tracked files only), a given
// `--project-path`, a clean clone of `--repo-url` at `--repo-ref`, or nothing — and producing that
// seed for each create without ever changing the user's checkout.
import { execFile } from "node:child_process";
import { readlinkSync } from "node:fs";
import { lstat, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import * as tar from "tar";
import { PyroError } from "../contract/errors.js";
import { linkStaysInside } from "../util/links.js";

const run = promisify(execFile);
const FALLBACK = "pass seed_path to workspace_create, or start pyro mcp serve with --no-project-source";

export interface ProjectOptions {
  /** Where the server was started (default: the process's cwd). */
  cwd?: string;
  projectPath?: string;
  repoUrl?: string;
  repoRef?: string;
  noProjectSource?: boolean;
}

export interface ProjectSource {
  /** Recorded as the workspace's seed_path and named in the tool descriptions. */
  origin: string;
  /** In words, for the workspace_create description. */
  description: string;
  /** Writes the seed (a .tar or a directory) into `scratch` and returns its path. */
  produce(scratch: string): Promise<string>;
}

async function git(args: string[], what: string): Promise<string> {
  try {
    const { stdout } = await run("git", args, { maxBuffer: 256 * 1024 * 1024, timeout: 10 * 60_000 });
    return stdout;
  } catch (err) {
    const detail = ((err as { stderr?: string }).stderr ?? (err as Error).message).trim().split("\n").pop();
    throw new PyroError("INVALID_ARGUMENT", `${what} failed (${detail}); ${FALLBACK}`);
  }
}

async function checkoutRoot(dir: string): Promise<string | undefined> {
  try {
    const { stdout } = await run("git", ["-C", dir, "rev-parse", "--show-toplevel"], { timeout: 10_000 });
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The project source the options name, or undefined for none. Validates eagerly, so a bad
 * --project-path or --repo-url is reported when the server starts. */
export async function resolveProjectSource(opts: ProjectOptions): Promise<ProjectSource | undefined> {
  if (opts.noProjectSource) return undefined;
  if (opts.repoUrl) return repoSource(opts.repoUrl, opts.repoRef);
  if (opts.repoRef) throw new PyroError("INVALID_ARGUMENT", "--repo-ref needs --repo-url");
  if (opts.projectPath) {
    const root = await checkoutRoot(resolve(opts.projectPath));
    if (!root) {
      throw new PyroError(
        "INVALID_ARGUMENT",
        `--project-path ${opts.projectPath} is not inside a git checkout; ${FALLBACK}`,
      );
    }
    return checkoutSource(root);
  }
  const root = await checkoutRoot(opts.cwd ?? process.cwd());
  return root ? checkoutSource(root) : undefined;
}

/** The tracked files of a checkout as they are on disk now (untracked and ignored files left out),
 * packed from a list `git ls-files` gives: nothing in the checkout is written, not even the index. */
function checkoutSource(root: string): ProjectSource {
  return {
    origin: root,
    description: `the git-tracked files of ${root} (untracked and ignored files are left out)`,
    async produce(scratch) {
      const listed = await git(["-C", root, "ls-files", "-z", "--cached"], `listing the tracked files of ${root}`);
      const files = [...new Set(listed.split("\0").filter(Boolean))];
      const archive = join(scratch, "project.tar");
      await tar.create(
        {
          cwd: root,
          file: archive,
          portable: true,
          follow: false,
          noDirRecurse: true,
          // Tracked but deleted on disk, or a symlink out of the checkout: left out, not followed.
          filter: (path, entry) => {
            const st = entry as { isSymbolicLink?: () => boolean };
            if (!st.isSymbolicLink?.()) return true;
            try {
              return linkStaysInside(root, path, readlinkSync(join(root, path)));
            } catch {
              return false;
            }
          },
        },
        await existing(root, files),
      );
      return archive;
    },
  };
}

async function existing(root: string, files: string[]): Promise<string[]> {
  const present = await Promise.all(
    files.map((f) =>
      lstat(join(root, f)).then(
        () => f,
        () => undefined,
      ),
    ),
  );
  return present.filter((f): f is string => f !== undefined);
}

/** A clean clone of `url` checked out at `ref` (default: the remote's HEAD), .git included. */
function repoSource(url: string, ref: string | undefined): ProjectSource {
  return {
    origin: ref ? `${url}#${ref}` : url,
    description: `a clean clone of ${url}${ref ? ` at ${ref}` : ""}`,
    async produce(scratch) {
      const dir = join(scratch, "clone");
      await git(["clone", "--quiet", "--no-checkout", url, dir], `cloning ${url}`);
      await git(
        ["-C", dir, "checkout", "--quiet", "--detach", ref ?? "HEAD"],
        `checking out ${ref ?? "HEAD"} of ${url}`,
      );
      return dir;
    },
  };
}

/** Runs fn with a fresh seed from `source` and removes it afterwards. */
export async function withProjectSeed<T>(source: ProjectSource, fn: (seedPath: string) => Promise<T>): Promise<T> {
  const scratch = await mkdtemp(join(tmpdir(), "pyro-project-"));
  try {
    return await fn(await source.produce(scratch));
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
