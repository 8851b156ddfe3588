// Owns checking CLI values against the contract schemas: the flags are gathered into the payload
// object, parsed by the operation's zod schema, and any issue becomes a usage error (exit 2) that
// names the flag the user typed rather than the payload field.
import { UsageError } from "clipanion";
import type { z } from "zod";
import { formatIssues } from "../sdk/validate.js";

/** `mem_mib` → `--mem-mib`, unless `names` says otherwise (positionals such as ENV). */
export function parseFlags<S extends z.ZodType>(
  schema: S,
  input: Record<string, unknown>,
  names: Readonly<Record<string, string>> = {},
): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new UsageError(
    formatIssues(parsed.error, input, (path) => {
      const field = String(path[0] ?? "");
      return names[field] ?? `--${field.replaceAll("_", "-")}`;
    }),
  );
}
