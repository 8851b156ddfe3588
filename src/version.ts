// Owns pyro's version and the location of its installed files (dist/agent bundle, package root).
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The package root: two levels above dist/src (or src when run through tsx). */
export const PACKAGE_ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string };
      if (pkg.name === "pyro-mcp") return dir;
    } catch {}
    dir = dirname(dir);
  }
  throw new Error("cannot locate the pyro-mcp package root");
})();

export const PYRO_VERSION: string = (
  JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string }
).version;

/** The bundled guest agent produced by `npm run build`. */
export const AGENT_BUNDLE = join(PACKAGE_ROOT, "dist", "agent", "pyro-agent.mjs");

/** The bundled supervisor entry point, spawned detached once per persistent sandbox. */
export const SUPERVISOR_MAIN = join(PACKAGE_ROOT, "dist", "bin", "pyro-supervisor.mjs");

/** The helper that binds the egress gateway's sockets inside a sandbox's network namespace. */
export const NETNS_LISTEN_MAIN = join(PACKAGE_ROOT, "dist", "bin", "pyro-netns-listen.mjs");
