// Owns validation at the boundary: a request is parsed against its contract schema, and zod's
// issues become one PyroError naming the operation and each offending field.
import type { z } from "zod";
import { PyroError } from "./errors.js";

export function parseParams<S extends z.ZodType>(schema: S, input: unknown, operation: string): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
  throw new PyroError("INVALID_ARGUMENT", `invalid ${operation} request: ${problems}`);
}
