// Owns the ordinary user that rootless tests and benchmarks act as: made by root when missing (with a
// subordinate id range, as useradd gives new users on Debian), a clean HOME, the built package
// installed where that user can read it, and the argv that runs a command as that user.
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../../src/version.js";

export const AS_ROOT = process.getuid?.() === 0;

export interface RootlessUser {
  name: string;
  uid: number;
  home: string;
  /** dist/bin/pyro.mjs of the package copy the user runs. */
  pyro: string;
  /** argv that runs `argv` as the user with a fresh login's environment (plus `extra`). */
  argv(argv: string[], extra?: Record<string, string>): string[];
  /** Ends the user's processes (its namespace holder too) and removes HOME and the package copy. */
  remove(): void;
}

function ensureUser(name: string, subordinateIds: boolean): void {
  try {
    execFileSync("id", ["-u", name], { stdio: "ignore" });
  } catch {
    execFileSync("useradd", ["--no-create-home", "--shell", "/usr/sbin/nologin", name]);
  }
  const lines = (file: string) => readFileSync(file, "utf8").split("\n");
  const hasRange = (file: string) => lines(file).some((line) => line.startsWith(`${name}:`));
  if (!subordinateIds) {
    // useradd gives new users a range; this user is the one who lacks it.
    for (const file of ["/etc/subuid", "/etc/subgid"]) {
      if (hasRange(file))
        writeFileSync(
          file,
          lines(file)
            .filter((l) => !l.startsWith(`${name}:`))
            .join("\n"),
        );
    }
    return;
  }
  if (!hasRange("/etc/subuid") || !hasRange("/etc/subgid")) {
    execFileSync("usermod", ["--add-subuids", "300000-365535", "--add-subgids", "300000-365535", name]);
  }
}

/** The built package as a user would have it installed: the checkout may sit where the user cannot
 * read (under /root), and pyro needs only package.json and dist/ at run time (the CLI is bundled). */
function installPackage(): string {
  const dir = mkdtempSync(join(tmpdir(), "pyro-test-rootless-pkg-"));
  chmodSync(dir, 0o755);
  cpSync(join(PACKAGE_ROOT, "package.json"), join(dir, "package.json"));
  cpSync(join(PACKAGE_ROOT, "dist", "bin"), join(dir, "dist", "bin"), { recursive: true });
  cpSync(join(PACKAGE_ROOT, "dist", "agent"), join(dir, "dist", "agent"), { recursive: true });
  return dir;
}

/** As root: `name`, made if missing (without subordinate ids when asked: only root can make that
 * user). As an ordinary user: that user (name is ignored). */
export function rootlessUser(name: string, opts: { subordinateIds?: boolean } = {}): RootlessUser {
  const user = AS_ROOT ? name : (process.env.USER ?? "");
  if (AS_ROOT) ensureUser(user, opts.subordinateIds ?? true);
  const uid = Number(execFileSync("id", ["-u", user], { encoding: "utf8" }).trim());
  const home = mkdtempSync(join(tmpdir(), "pyro-test-rootless-"));
  chmodSync(home, 0o755);
  if (AS_ROOT) chownSync(home, uid, uid);
  const pkg = installPackage();
  return {
    name: user,
    uid,
    home,
    pyro: join(pkg, "dist", "bin", "pyro.mjs"),
    argv(argv, extra = {}) {
      const env = Object.entries({
        HOME: home,
        USER: user,
        LOGNAME: user,
        PATH: "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        LANG: "C.UTF-8",
        ...extra,
      }).map(([k, v]) => `${k}=${v}`);
      return AS_ROOT ? ["runuser", "-u", user, "--", "env", "-i", ...env, ...argv] : ["env", "-i", ...env, ...argv];
    },
    remove() {
      if (AS_ROOT) {
        try {
          execFileSync("pkill", ["-KILL", "-u", user], { stdio: "ignore" });
        } catch {}
      }
      rmSync(home, { recursive: true, force: true });
      rmSync(pkg, { recursive: true, force: true });
    },
  };
}
