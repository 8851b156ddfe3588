// Owns binding sockets inside a sandbox's network namespace for a process that stays outside it:
// a short-lived helper joins the namespace, binds, and passes each socket back over Node's IPC
// channel (SCM_RIGHTS). A socket keeps the namespace it was made in, so the gateway in the
// supervisor serves the sandbox's side without running anything there.
import { spawn } from "node:child_process";
import type { Socket as UdpSocket } from "node:dgram";
import type { Server } from "node:net";
import { PyroError } from "../contract/errors.js";
import { NETNS_LISTEN_MAIN } from "../version.js";

export interface ListenSpec {
  proto: "tcp" | "udp";
  address: string;
  port: number;
}

export interface ListenRequest {
  specs: ListenSpec[];
}

const LISTEN_TIMEOUT_MS = 10_000;

/** Binds every spec in the namespace at `nsPath`; all or nothing. Results are in the specs' order. */
export function openInNamespace(nsPath: string, specs: ListenSpec[]): Promise<Array<Server | UdpSocket>> {
  const request: ListenRequest = { specs };
  const child = spawn(
    "nsenter",
    [`--net=${nsPath}`, "--", process.execPath, NETNS_LISTEN_MAIN, JSON.stringify(request)],
    {
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    },
  );
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (text: string) => {
    stderr = (stderr + text).slice(-2_000);
  });
  const handles: Array<Server | UdpSocket | undefined> = specs.map(() => undefined);
  const release = () => {
    for (const handle of handles) handle?.close();
  };
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      release();
      reject(
        new PyroError(
          "SANDBOX_START_FAILED",
          `could not open the egress gateway's sockets in ${nsPath}: ${why}${stderr ? ` (${stderr.trim()})` : ""}`,
        ),
      );
    };
    const finish = () => {
      if (settled) return;
      if (handles.some((h) => h === undefined)) return fail("a socket was not passed back");
      settled = true;
      clearTimeout(timer);
      resolve(handles as Array<Server | UdpSocket>);
    };
    const timer = setTimeout(() => fail(`no answer within ${LISTEN_TIMEOUT_MS} ms`), LISTEN_TIMEOUT_MS);
    child.on("message", (message: { index?: number; done?: boolean; error?: string }, handle) => {
      if (message.error !== undefined) return fail(message.error);
      if (message.done) return finish();
      if (typeof message.index === "number" && handle) handles[message.index] = handle as Server | UdpSocket;
    });
    child.once("error", (err) => fail(err.message));
    child.once("exit", (code, signal) => {
      if (handles.every((h) => h !== undefined)) finish();
      else fail(`the helper exited (${signal ?? `code ${code}`})`);
    });
  });
}
