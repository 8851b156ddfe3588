#!/usr/bin/env node
// The `pyro` program (dist/bin/pyro.mjs): as root it runs the CLI (dist/bin/pyro-cli.mjs) in this
// process; as an ordinary user it first joins the user's pyro namespaces (src/rootless/namespace.ts)
// and runs the CLI there, passing on its exit. Kept tiny, because a rootless command loads Node twice.
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, statSync } from "node:fs";
import { constants } from "node:os";
import { fileURLToPath } from "node:url";
import {
  ENTERED_ENV,
  nsenterArgv,
  ROOTLESS_ERROR_ENV,
  userNamespaceHolder,
  wantsUserNamespace,
} from "../rootless/namespace.js";
import { resolvePaths } from "../util/paths.js";

const cli = new URL("./pyro-cli.mjs", import.meta.url);

/** A user's workspaces, secrets and environments are that user's alone, whatever the home's mode. */
function makePrivate(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

async function runInUserNamespace(holderPid: number): Promise<never> {
  const argv = nsenterArgv(holderPid, [process.execPath, fileURLToPath(cli), ...process.argv.slice(2)], process.cwd());
  const child = spawn(argv[0]!, argv.slice(1), { stdio: "inherit", env: { ...process.env, [ENTERED_ENV]: "1" } });
  // A terminal's Ctrl-C reaches the whole process group, the CLI included; a signal sent to this
  // process alone (an MCP host stopping its server) is passed on.
  for (const signal of ["SIGTERM", "SIGHUP"] as const) process.on(signal, () => child.kill(signal));
  process.on("SIGINT", () => {});
  const code = await new Promise<number>((resolve) => {
    child.once("error", (err) => {
      process.stderr.write(`error: could not enter the user namespace with nsenter: ${err.message}\n`);
      resolve(1);
    });
    child.once("exit", (status, signal) => resolve(status ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
  process.exit(code);
}

if (wantsUserNamespace()) {
  const dirs = resolvePaths();
  const holder = await Promise.resolve()
    .then(() => {
      makePrivate(dirs.stateDir);
      makePrivate(dirs.cacheDir);
      return userNamespaceHolder(dirs.stateDir);
    })
    .catch((err: Error) => ({ error: err.message }));
  if ("pid" in holder) await runInUserNamespace(holder.pid);
  // No namespace: pyro still runs (doctor, env list, help), and every engine says why it cannot.
  else process.env[ROOTLESS_ERROR_ENV] = holder.error;
}
await import(cli.href);
