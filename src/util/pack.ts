// Owns making a tar stream of files on disk: node-tar's Pack, with its two known faults held off.
//
// node-tar 7.5's Pack can write its end-of-archive twice. A hard link whose target was stat'ed
// later waits for the target's job; when the target's job ends, the link's job is started inside
// it, and a link has no body, so it may end at once: its job-done finds the queue empty and ends
// the archive, then the target's job-done goes on and finds the queue empty too. The second end is
// a write after end, thrown from an 'end' listener where no caller can catch it: it would end the
// guest agent or the CLI mid-export. The archive written before it is whole and right, so the pack
// here ignores what its step would do once it has ended. (Packing one job at a time also avoids the
// wait, at 1.7× the time for small files.)
//
// It can also stop for good. Its step pipes the queue's head into the archive only while fewer
// than `jobs` entries are open; the links started from a target's job-done open entries outside
// the step, so the step can find `jobs` entries open, none of them the head's piped, and nothing
// left to close one (an empty file, then a file with a second name further on, then directories:
// the pack never ended). After each step the head is piped here if its entry is ready.
import { lstatSync, type Stats } from "node:fs";
import { resolve } from "node:path";
import * as tar from "tar";
import { walkTree } from "./tree-walk.js";

type Job = { entry?: unknown; piped?: boolean };
type Steps = Record<symbol, unknown>;
const packSymbol = (name: string): symbol => {
  const found = Object.getOwnPropertySymbols(tar.Pack.prototype).find((s) => s.description === name);
  if (!found) {
    throw new Error(`node-tar's Pack has no [${name}]: src/util/pack.ts was written for tar 7.5; check it`);
  }
  return found;
};
const PROCESS = packSymbol("process");
const PROCESS_JOB = packSymbol("processJob");
const CURRENT = packSymbol("current");
const step = (tar.Pack.prototype as unknown as Steps)[PROCESS] as (this: tar.Pack) => void;

class Pack extends tar.Pack {}
Object.defineProperty(Pack.prototype, PROCESS, {
  value(this: tar.Pack) {
    if (!this.writable) return;
    step.call(this);
    const self = this as unknown as Steps;
    const head = self[CURRENT] as Job | undefined;
    if (this.writable && head?.entry && !head.piped) (self[PROCESS_JOB] as (job: Job) => void).call(this, head);
  },
});

export type PackOptions = NonNullable<ConstructorParameters<typeof tar.Pack>[0]>;

/** Entries handed to the pack and not yet started: the only part of a tree held in memory. */
const MAX_QUEUED = 256;

/** A Map that keeps nothing: node-tar caches every stat and listing for the pack's lifetime. */
class NoCache<K, V> extends Map<K, V> {
  override set(_key: K, _value: V): this {
    return this;
  }
}

/**
 * A tar stream of `paths` under `options.cwd`, a directory with everything beneath it; call sites
 * listen for its 'error'. The tree is walked here, depth first, and handed to the pack a few
 * hundred entries ahead of what it writes: node-tar's own recursion is breadth first and queues a
 * whole level at once (a million files in a thousand directories took 4 GB). A name that is not
 * UTF-8 fails the pack, naming where it is. With `noDirRecurse`, the paths alone are packed.
 */
export function packFiles(options: PackOptions, paths: readonly string[]): tar.Pack {
  let added = 0;
  let started = 0;
  let wake: (() => void) | undefined;
  const progressed = () => {
    started += 1;
    const resume = wake;
    wake = undefined;
    resume?.();
  };
  const refusedDirs: string[] = [];
  const pack = new Pack({
    ...options,
    noDirRecurse: true,
    statCache: new NoCache(),
    readdirCache: new NoCache(),
    onWriteEntry: (entry) => {
      progressed();
      options.onWriteEntry?.(entry);
    },
    filter: (path, stat) => {
      const under = refusedDirs.some((dir) => path.startsWith(dir));
      const keep = !under && (options.filter ? options.filter(path, stat) : true);
      if (!keep) {
        if ((stat as Stats).isDirectory?.()) refusedDirs.push(`${path.replace(/\/+$/, "")}/`);
        progressed();
      }
      return keep;
    },
  });
  const add = async (path: string) => {
    pack.add(path);
    added += 1;
    while (added - started > MAX_QUEUED) await new Promise<void>((resume) => (wake = resume));
  };
  const cwd = options.cwd ?? process.cwd();
  void (async () => {
    for (const path of paths) {
      await add(path);
      if (options.noDirRecurse || !isDirectory(resolve(cwd, path))) continue;
      for await (const { entry } of walkTree(resolve(cwd, path))) {
        await add(path === "." ? `./${entry.path}` : `${path.replace(/\/+$/, "")}/${entry.path}`);
      }
    }
    pack.end();
  })().catch((err) => pack.emit("error", err));
  return pack;
}

function isDirectory(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false; // the pack reports it
  }
}
