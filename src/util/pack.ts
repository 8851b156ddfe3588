// Owns making a tar stream of files on disk: node-tar's Pack, with its one known fault held off.
//
// node-tar 7.5's Pack can write its end-of-archive twice. A hard link whose target was stat'ed
// later waits for the target's job; when the target's job ends, the link's job is started inside
// it, and a link has no body, so it may end at once: its job-done finds the queue empty and ends
// the archive, then the target's job-done goes on and finds the queue empty too. The second end is
// a write after end, thrown from an 'end' listener where no caller can catch it: it would end the
// guest agent or the CLI mid-export. The archive written before it is whole and right, so the pack
// here ignores what its step would do once it has ended. (Packing one job at a time also avoids the
// wait, at 1.7× the time for small files.)
import * as tar from "tar";

const PROCESS = Object.getOwnPropertySymbols(tar.Pack.prototype).find((s) => s.description === "process");
if (!PROCESS) {
  throw new Error("node-tar's Pack has no [process] step: src/util/pack.ts was written for tar 7.5; check it");
}
const step = (tar.Pack.prototype as unknown as Record<symbol, (this: tar.Pack) => void>)[PROCESS] as (
  this: tar.Pack,
) => void;

class Pack extends tar.Pack {}
Object.defineProperty(Pack.prototype, PROCESS, {
  value(this: tar.Pack) {
    if (this.writable) step.call(this);
  },
});

export type PackOptions = NonNullable<ConstructorParameters<typeof tar.Pack>[0]>;

/** A tar stream of `paths` under `options.cwd`; call sites listen for its 'error'. */
export function packFiles(options: PackOptions, paths: readonly string[]): tar.Pack {
  const pack = new Pack(options);
  for (const path of paths) pack.add(path);
  pack.end();
  return pack;
}
