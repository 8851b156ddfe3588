// Owns project-aware startup of `pyro mcp serve`: which source seeds a workspace created without
// `seed_path` — the git checkout the server was started in (its tracked files and a shallow .git), a
// given `--project-path`, a clean clone of `--repo-url` at `--repo-ref`, or nothing — and producing
// that seed for each create without ever changing the user's checkout.
import { execFile } from "node:child_process";
import { createWriteStream, readlinkSync } from "node:fs";
import { lstat, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import * as tar from "tar";
import { PyroError } from "../contract/errors.js";
import { linkStaysInside } from "../util/links.js";
import { packFiles } from "../util/pack.js";

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
  /** The checkout on this host, when the source is one (not a clone of a URL). */
  directory?: string;
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

/** A git query whose failure is an answer (no commit yet, a detached HEAD): undefined then. */
async function gitQuery(args: string[]): Promise<string | undefined> {
  try {
    const { stdout } = await run("git", args, { timeout: 10_000 });
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

function checkoutRoot(dir: string): Promise<string | undefined> {
  return gitQuery(["-C", dir, "rev-parse", "--show-toplevel"]);
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
 * packed from a list `git ls-files` gives, plus a .git of the checkout's HEAD (see shallowRepository).
 * Nothing in the checkout is written, not even the index. */
function checkoutSource(root: string): ProjectSource {
  return {
    origin: root,
    directory: root,
    description:
      `the git-tracked files of ${root} as they are on disk, in a git repository at its HEAD commit ` +
      "(untracked and ignored files are left out; uncommitted changes show in git status and git diff)",
    async produce(scratch) {
      const listed = await git(["-C", root, "ls-files", "-z", "--cached"], `listing the tracked files of ${root}`);
      const files = [...new Set(listed.split("\0").filter(Boolean))];
      const present = await existing(root, files);
      const archive = join(scratch, "project.tar");
      const pack = packFiles(
        {
          cwd: root,
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
        present,
      );
      await pipeline(pack, createWriteStream(archive));
      const repo = await shallowRepository(root, present, scratch);
      await tar.replace({ file: archive, cwd: repo, portable: true, follow: false }, [".git"]);
      return archive;
    },
  };
}

/**
 * A new repository in `dir` whose HEAD is the checkout's HEAD commit (on the same branch, or
 * detached like it) and whose index is that commit's tree, so that over the checkout's files
 * `git status` and `git diff` show its uncommitted changes, staged or not, as unstaged ones. Only
 * HEAD's commit and tree are fetched (depth 1), which bounds the copy by one snapshot of the
 * project, not its history; no remote is configured, so no URL or credential leaves the host.
 * Files the checkout's index has but HEAD lacks are marked intent-to-add, so they appear in
 * `git diff` rather than as untracked.
 */
async function shallowRepository(root: string, tracked: readonly string[], scratch: string): Promise<string> {
  const what = `copying the HEAD commit of ${root}`;
  const dir = join(scratch, "repo");
  const format = (await gitQuery(["-C", root, "rev-parse", "--show-object-format"])) ?? "sha1";
  await git(["init", "--quiet", `--object-format=${format}`, dir], what);
  const head = await gitQuery(["-C", root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}"]);
  const branch = await gitQuery(["-C", root, "symbolic-ref", "--quiet", "HEAD"]);
  if (branch) await git(["-C", dir, "symbolic-ref", "HEAD", branch], what);
  let inHead = new Set<string>();
  if (head) {
    await git(["-C", dir, "fetch", "--quiet", "--depth=1", "--no-tags", "--no-write-fetch-head", root, head], what);
    await git(["-C", dir, "update-ref", ...(branch ? [] : ["--no-deref"]), "HEAD", head], what);
    await git(["-C", dir, "read-tree", "HEAD"], what);
    const listed = await git(["-C", root, "ls-tree", "-r", "-z", "--name-only", "--full-tree", head], what);
    inHead = new Set(listed.split("\0").filter(Boolean));
  }
  const added = tracked.filter((f) => !inHead.has(f));
  if (added.length > 0) {
    // Reads the checkout's files (add -N records no content) and writes only the new index.
    const list = join(scratch, "intent-to-add");
    await writeFile(list, `${added.join("\0")}\0`);
    await git(
      [
        `--git-dir=${join(dir, ".git")}`,
        `--work-tree=${root}`,
        "--literal-pathspecs",
        "add",
        "--force",
        "--intent-to-add",
        `--pathspec-from-file=${list}`,
        "--pathspec-file-nul",
      ],
      what,
    );
  }
  return dir;
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
