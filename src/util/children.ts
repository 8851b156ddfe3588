// Owns watching the child processes engines start: whether something settles in time, and a
// child's stderr as log lines.
import type { ChildProcess } from "node:child_process";

/** Waits for `p` at most `ms`; the timer is ref'd so an unref'd child cannot let the owner exit mid-wait. */
export function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.then(() => true),
    new Promise<boolean>((r) => {
      timer = setTimeout(() => r(false), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Logs each non-empty line the child writes to stderr as `<name>: <line>`. */
export function logStderrLines(child: ChildProcess, name: string, log: (line: string) => void): void {
  let partial = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (text: string) => {
    const lines = (partial + text).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) if (line.trim()) log(`${name}: ${line}`);
  });
}
