// Owns checking CLI values against the contract schemas: the flags are gathered into the payload
// object, parsed by the operation's zod schema, and any issue becomes a usage error (exit 2) that
// names the flag the user typed rather than the payload field. Also the two flag shapes the schemas
// cannot see: repeated `KEY=VALUE` flags and `--text TEXT | --text-file FILE` pairs.
import { isUtf8 } from "node:buffer";
import { readFile } from "node:fs/promises";
import type { Readable } from "node:stream";
import { UsageError } from "clipanion";
import type { z } from "zod";
import { PyroError } from "../contract/errors.js";
import { formatIssues } from "../sdk/validate.js";

/** `mem_mib` → `--mem-mib`, unless `names` says otherwise (positionals such as ENV). */
export function parseFlags<S extends z.ZodType>(
  schema: S,
  input: Record<string, unknown>,
  names: Readonly<Record<string, string>> = {},
): z.output<S> {
  // A flag not given is left out, not passed as undefined: the operation sees only what was said.
  const given = Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined));
  const parsed = schema.safeParse(given);
  if (parsed.success) return parsed.data;
  throw new UsageError(
    formatIssues(parsed.error, input, (path) => {
      const field = String(path[0] ?? "");
      return names[field] ?? `--${field.replaceAll("_", "-")}`;
    }),
  );
}

/** Repeated `--label K=V` flags as a record; the value may hold `=`, the key may not be empty. */
export function keyValues(flag: string, values: readonly string[] | undefined): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const item of values ?? []) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`${flag} must be KEY=VALUE (got ${JSON.stringify(item)})`);
    pairs[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return pairs;
}

/** Repeated `--secret-env NAME[=ENV_VAR]` flags: secret name -> variable name (the same by default). */
export function secretEnvFlags(values: readonly string[] | undefined): Record<string, string> {
  const mapping: Record<string, string> = {};
  for (const item of values ?? []) {
    const [name = "", variable = name] = item.split("=", 2);
    if (!name) throw new UsageError(`--secret-env must be NAME or NAME=ENV_VAR (got ${JSON.stringify(item)})`);
    mapping[name] = variable;
  }
  return mapping;
}

/** `--secret NAME=VALUE` and `--secret-file NAME=PATH` flags as the contract's secret inputs. The
 * value never appears in an error message. */
export function secretFlags(
  literals: readonly string[] | undefined,
  files: readonly string[] | undefined,
  hostBindings: readonly string[] = [],
): Array<{ name: string; value?: string; file_path?: string; hosts?: string[] }> {
  const split = (flag: string, item: string): [string, string] => {
    const eq = item.indexOf("=");
    if (eq <= 0 || eq === item.length - 1) {
      const name = eq > 0 ? item.slice(0, eq) : "";
      throw new UsageError(
        `${flag} must be NAME=${flag === "--secret" ? "VALUE" : "PATH"}${name ? ` (${name} has none)` : ""}`,
      );
    }
    return [item.slice(0, eq), item.slice(eq + 1)];
  };
  // --secret-host NAME=HOST[,HOST] binds a secret given by --secret or --secret-file to hosts.
  const hosts = new Map<string, string[]>();
  for (const item of hostBindings) {
    const eq = item.indexOf("=");
    if (eq <= 0 || eq === item.length - 1) throw new UsageError("--secret-host must be NAME=HOST[,HOST...]");
    const name = item.slice(0, eq);
    hosts.set(name, [...(hosts.get(name) ?? []), ...item.slice(eq + 1).split(",")]);
  }
  const secrets = [
    ...(literals ?? []).map((item) => {
      const [name, value] = split("--secret", item);
      return { name, value };
    }),
    ...(files ?? []).map((item) => {
      const [name, file_path] = split("--secret-file", item);
      return { name, file_path };
    }),
  ].map((secret) => (hosts.has(secret.name) ? { ...secret, hosts: hosts.get(secret.name)! } : secret));
  const unknown = [...hosts.keys()].filter((name) => !secrets.some((s) => s.name === name));
  if (unknown.length > 0) {
    throw new UsageError(`--secret-host names ${unknown.join(", ")}, which no --secret or --secret-file gives`);
  }
  return secrets;
}

export interface TextSource {
  /** The inline flag and its value (`--text`). */
  text: [flag: string, value: string | undefined];
  /** The file flag and its value (`--text-file`); `-` reads stdin. */
  file: [flag: string, value: string | undefined];
}

/** The content given by exactly one of an inline flag and a file flag, as UTF-8 text. */
export async function textFrom(source: TextSource, stdin: Readable): Promise<string> {
  const [textFlag, text] = source.text;
  const [fileFlag, file] = source.file;
  if (text !== undefined && file !== undefined) throw new UsageError(`give ${textFlag} or ${fileFlag}, not both`);
  if (text !== undefined) return text;
  if (file === undefined)
    throw new UsageError(`give the content with ${textFlag} TEXT or ${fileFlag} FILE (- for stdin)`);
  let bytes: Buffer;
  try {
    bytes = file === "-" ? await readAll(stdin) : await readFile(file);
  } catch (err) {
    throw new PyroError("INVALID_ARGUMENT", `cannot read ${fileFlag} ${file}: ${why(err)}`);
  }
  if (!isUtf8(bytes)) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `${fileFlag} ${file} is not UTF-8 text; copy binary files in with pyro workspace sync push`,
    );
  }
  return bytes.toString("utf8");
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks);
}

function why(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return "no such file";
  if (code === "EISDIR") return "it is a directory";
  if (code === "EACCES") return "permission denied";
  return err instanceof Error ? err.message : String(err);
}
