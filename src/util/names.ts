// Owns reading directory names on the host side of a workspace (diff, snapshots, disk tools). A
// guest may name a file with any bytes; Node turns bytes that are not UTF-8 into U+FFFD, and the
// mangled name then names nothing (`ENOENT lstat`, reported as a bug). Such a name is refused here
// by its bytes, with the fix, before anything is half done.
import { isUtf8 } from "node:buffer";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { PyroError } from "../contract/errors.js";

/** The bytes of a name as text a user can type back: printable ASCII kept, the rest as \ooo (git's quoting). */
export function escapedName(name: Buffer): string {
  let out = "";
  for (const byte of name)
    out +=
      byte >= 0x20 && byte < 0x7f && byte !== 0x5c
        ? String.fromCharCode(byte)
        : `\\${byte.toString(8).padStart(3, "0")}`;
  return out;
}

export function notUtf8(dir: string, name: Buffer): PyroError {
  return new PyroError(
    "INVALID_ARGUMENT",
    `the file name "${escapedName(name)}" in ${dir} is not valid UTF-8, which pyro cannot diff, snapshot or export yet; ` +
      `rename it inside the workspace (e.g. mv "$(printf '${escapedName(name)}')" new-name) and try again: nothing was changed`,
  );
}

/** The names in `dir`, refusing one that is not UTF-8 (`shown` is how the user knows dir). */
export async function utf8Names(dir: string, shown = dir): Promise<string[]> {
  const names = await readdir(dir, { encoding: "buffer" });
  return names.map((name) => {
    if (!isUtf8(name)) throw notUtf8(shown, name);
    return name.toString("utf8");
  });
}

/** As utf8Names, with whether each is a directory. */
export async function utf8Entries(dir: string, shown = dir): Promise<Array<{ name: string; directory: boolean }>> {
  const entries = await readdir(dir, { encoding: "buffer", withFileTypes: true });
  return entries.map((entry) => {
    const name = entry.name as unknown as Buffer;
    if (!isUtf8(name)) throw notUtf8(shown, name);
    return { name: name.toString("utf8"), directory: entry.isDirectory() };
  });
}

/** `rel` under the guest's /workspace, for messages. */
export function guestDir(rel: string): string {
  return rel ? join("/workspace", rel) : "/workspace";
}
