// Owns a workspace's network log: one JSON line per decision the gateway makes (a DNS answer, a
// connection allowed or refused, UDP refused, with bytes and duration once it closes). Appends are queued in
// order and never throw into the gateway; the file rolls over to one `.1` copy at a stated size.
import { appendFile, readFile, rename, stat } from "node:fs/promises";
import { NetworkLogEntry } from "../contract/workspace.js";

/** The log rolls over at this size; the previous file is kept as `<log>.1`, so at most twice this. */
export const NETWORK_LOG_MAX_BYTES = 4 * 1024 * 1024;

export class NetworkLog {
  private queue: Promise<void> = Promise.resolve();
  private size = -1;

  constructor(
    readonly path: string,
    private readonly onError: (err: Error) => void = () => {},
  ) {}

  write(entry: Omit<NetworkLogEntry, "time">): void {
    const line = `${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`;
    this.queue = this.queue.then(() => this.append(line)).catch((err: Error) => this.onError(err));
  }

  /** Settles once every line written so far is on disk. */
  flushed(): Promise<void> {
    return this.queue;
  }

  private async append(line: string): Promise<void> {
    if (this.size < 0)
      this.size = await stat(this.path).then(
        (s) => s.size,
        () => 0,
      );
    if (this.size + line.length > NETWORK_LOG_MAX_BYTES) {
      await rename(this.path, `${this.path}.1`).catch(() => {});
      this.size = 0;
    }
    await appendFile(this.path, line, { mode: 0o600 });
    this.size += Buffer.byteLength(line);
  }
}

/** The last `limit` entries, oldest first, from the rolled-over copy and the live file. */
export async function readNetworkLog(path: string, limit: number): Promise<NetworkLogEntry[]> {
  const texts = await Promise.all([`${path}.1`, path].map((p) => readFile(p, "utf8").catch(() => "")));
  const entries: NetworkLogEntry[] = [];
  for (const line of texts.join("").split("\n")) {
    if (line.length === 0) continue;
    try {
      entries.push(NetworkLogEntry.parse(JSON.parse(line)));
    } catch {
      // A line cut short by a crash is skipped, not fatal to reading the rest.
    }
  }
  return entries.slice(-limit);
}
