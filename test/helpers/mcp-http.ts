// Owns reading what `pyro mcp serve --transport http --json` announces on stdout: one JSON object
// (pretty-printed) with the URL it listens on and its bearer token.
import type { ChildProcessByStdio } from "node:child_process";
import type { Readable } from "node:stream";

export function httpAnnouncement(
  child: ChildProcessByStdio<null, Readable, Readable>,
): Promise<{ url: string; token: string }> {
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      if (out.trimEnd().endsWith("}")) resolve(JSON.parse(out) as { url: string; token: string });
    });
    child.once("exit", (code) => reject(new Error(`mcp serve exited ${code}`)));
  });
}
