// Owns which host paths an MCP caller may name. A model's tool call is not the user at a shell: it
// may copy in (seed_path, source_path, a secret's file_path) and write out (output_path) only under
// the server's allowed directories — the project directory by default, more with
// `--allow-host-path`, any with `--allow-any-host-path` — and copy in at most a stated size. The
// CLI and the SDK are the user's own hands and are not limited here.
import type { Dirent } from "node:fs";
import { lstat, opendir, realpath } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { PyroError } from "../contract/errors.js";

/** What a caller may copy into a workspace, unless the server is started with another cap. */
export const DEFAULT_MAX_SOURCE_BYTES = 2 * 1024 ** 3;
/** Entries (files, directories, links) in one directory copied in; a stated, fixed limit. */
export const MAX_SOURCE_ENTRIES = 500_000;

export interface HostPathOptions {
  /** Directories callers may read from and write under; relative paths resolve against the first.
   * Default: the server's working directory. */
  roots?: readonly string[];
  /** No directory restriction (a caller as trusted as the user); the size cap still holds. */
  anyPath?: boolean;
  /** Largest directory (sum of its files) or archive a caller may copy in. */
  maxSourceBytes?: number;
}

export class HostPaths {
  readonly roots: readonly string[];
  readonly anyPath: boolean;
  readonly maxSourceBytes: number;

  constructor(opts: HostPathOptions = {}) {
    this.roots = (opts.roots?.length ? opts.roots : [process.cwd()]).map((r) => resolve(r));
    this.anyPath = opts.anyPath ?? false;
    this.maxSourceBytes = opts.maxSourceBytes ?? DEFAULT_MAX_SOURCE_BYTES;
  }

  /** Fails, naming it, when an allowed directory is not one: said when the server starts. */
  async check(): Promise<void> {
    for (const root of this.roots) {
      const info = await lstat(root).catch(() => undefined);
      if (
        !info?.isDirectory() &&
        !(
          await realpath(root)
            .then((r) => lstat(r))
            .catch(() => undefined)
        )?.isDirectory()
      ) {
        throw new PyroError(
          "INVALID_ARGUMENT",
          `--allow-host-path ${root} is not a directory on this host; name an existing directory`,
        );
      }
    }
  }

  /** One sentence for the server's instructions. */
  describe(): string {
    const size = `${Math.round(this.maxSourceBytes / 1024 ** 2)} MiB`;
    return this.anyPath
      ? `Host paths may be anywhere this user can reach; a copied-in source is at most ${size}.`
      : `Host paths (seed_path, source_path, output_path, a secret's file_path) must be under ${this.roots.join(", ")}; relative ones start at ${this.roots[0]}; a copied-in source is at most ${size}.`;
  }

  /** A directory or archive to copy in: allowed, and within the size cap. Returns the absolute path. */
  async source(path: string, what: string): Promise<string> {
    const abs = await this.allowed(path, what, "read");
    const info = await lstat(abs).catch(() => undefined);
    // A missing or odd path is the manager's to explain; the cap only needs what exists.
    if (info?.isDirectory()) await this.measure(abs, path, what);
    else if (info?.isFile() && info.size > this.maxSourceBytes) throw this.tooBig(what, path, info.size);
    return abs;
  }

  /** A host file read whole (a secret's file_path). */
  async file(path: string, what: string): Promise<string> {
    return this.allowed(path, what, "read");
  }

  /** A new host path to write (export, disk export). */
  async target(path: string, what: string): Promise<string> {
    return this.allowed(path, what, "write");
  }

  private async allowed(path: string, what: string, use: "read" | "write"): Promise<string> {
    const abs = isAbsolute(path) ? resolve(path) : resolve(this.roots[0]!, path);
    if (this.anyPath) return abs;
    // Symlinks are resolved first, so a link inside a root cannot lead the caller out of it. A
    // target does not exist yet: its nearest existing ancestor is what it would be written under.
    const real = await realOrAncestor(abs);
    const roots = await Promise.all(this.roots.map((r) => realOrAncestor(r)));
    if (roots.some((root) => isUnder(real, root))) return abs;
    const via = real === abs ? "" : ` (it resolves to ${real})`;
    throw new PyroError(
      "HOST_PATH_NOT_ALLOWED",
      `${what} ${path}${via} is outside the host directories this MCP server lets callers ${use === "read" ? "read" : "write"}: ${this.roots.join(", ")}; ` +
        "use a path under one of them, or ask the user to restart pyro mcp serve with --allow-host-path DIR",
    );
  }

  /** Walks the directory without following links, stopping as soon as it is over a limit. */
  private async measure(dir: string, path: string, what: string): Promise<void> {
    let bytes = 0;
    let entries = 0;
    const pending = [dir];
    while (pending.length > 0) {
      const current = pending.pop()!;
      const handle = await opendir(current).catch(() => undefined);
      // An unreadable directory is refused, naming it, when the copy reaches it.
      if (!handle) continue;
      for await (const entry of handle as AsyncIterable<Dirent>) {
        if (++entries > MAX_SOURCE_ENTRIES) {
          throw new PyroError(
            "HOST_PATH_NOT_ALLOWED",
            `${what} ${path} holds more than ${MAX_SOURCE_ENTRIES.toLocaleString("en-US")} entries, more than an MCP caller may copy in; give a smaller directory (or an archive of what is needed)`,
          );
        }
        const full = join(current, entry.name);
        if (entry.isDirectory()) pending.push(full);
        else if (entry.isFile()) {
          bytes += (await lstat(full).catch(() => undefined))?.size ?? 0;
          if (bytes > this.maxSourceBytes) throw this.tooBig(what, path, bytes, true);
        }
      }
    }
  }

  private tooBig(what: string, path: string, bytes: number, atLeast = false): PyroError {
    const mib = (n: number) =>
      n < 1024 ** 2 ? `${n.toLocaleString("en-US")} bytes` : `${Math.ceil(n / 1024 ** 2).toLocaleString("en-US")} MiB`;
    return new PyroError(
      "HOST_PATH_NOT_ALLOWED",
      `${what} ${path} is ${atLeast ? "over " : ""}${mib(bytes)}, more than the ${mib(this.maxSourceBytes)} an MCP caller may copy in; ` +
        "copy in less, or ask the user to restart pyro mcp serve with a larger --max-source-mib",
    );
  }
}

function isUnder(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

/** The real path of `abs`, or of its nearest existing ancestor joined with the rest. */
async function realOrAncestor(abs: string): Promise<string> {
  const rest: string[] = [];
  let current = abs;
  for (;;) {
    try {
      return join(await realpath(current), ...rest.reverse());
    } catch {
      const parent = dirname(current);
      if (parent === current) return abs;
      rest.push(current.slice(parent.length).replace(/^\//, ""));
      current = parent;
    }
  }
}
