// Owns how a face turns a request that fails its contract schema into one sentence naming what to
// change, in that face's own vocabulary: `--mem-mib must be ≥ 128` on the CLI, `mem_mib must be
// ≥ 128` in the SDK and over MCP. zod's own messages name types ("expected int"), not fixes.
import type { z } from "zod";
import { PyroError } from "../contract/errors.js";

/** Names a field the way the caller wrote it (a flag, a positional, a payload key). */
export type FieldNamer = (path: readonly PropertyKey[]) => string;

export const payloadFieldName: FieldNamer = (path) => (path.length === 0 ? "request" : path.map(String).join("."));

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function show(value: unknown): string {
  if (typeof value === "number" && Number.isNaN(value)) return "NaN";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

const TYPE_PHRASES: Record<string, string> = {
  int: "a whole number",
  number: "a number",
  string: "a string",
  boolean: "true or false",
  array: "a list",
  object: "an object",
};

function typePhrase(expected: string): string {
  return TYPE_PHRASES[expected] ?? `a ${expected}`;
}

/** The predicate of the sentence: what the named field must be. */
function describeIssue(issue: z.core.$ZodIssue, value: unknown): string {
  switch (issue.code) {
    case "invalid_type":
      if (value === undefined) return "is required";
      return `must be ${typePhrase(issue.expected)} (got ${show(value)})`;
    case "too_small": {
      if (issue.origin === "string" && Number(issue.minimum) === 1) return "must not be empty";
      if (issue.origin === "array") return `must have at least ${issue.minimum} item${issue.minimum === 1 ? "" : "s"}`;
      if (issue.origin === "string") return `must be at least ${issue.minimum} characters`;
      return `must be ${issue.inclusive ? "≥" : ">"} ${issue.minimum} (got ${show(value)})`;
    }
    case "too_big": {
      if (issue.origin === "array") return `must have at most ${issue.maximum} items`;
      if (issue.origin === "string") return `must be at most ${issue.maximum} characters`;
      return `must be ${issue.inclusive ? "≤" : "<"} ${issue.maximum} (got ${show(value)})`;
    }
    case "invalid_value":
      return `must be one of ${issue.values.map((v) => String(v)).join(", ")} (got ${show(value)})`;
    case "invalid_union": {
      if (value === undefined) return "is required";
      const expected = new Set<string>();
      for (const branch of issue.errors) {
        const first = branch[0];
        if (first?.code === "invalid_type" && first.path.length === 0) expected.add(typePhrase(first.expected));
      }
      if (expected.size > 0) return `must be ${[...expected].join(" or ")} (got ${show(value)})`;
      return `is not valid (${issue.message})`;
    }
    case "unrecognized_keys":
      return `has unknown field${issue.keys.length === 1 ? "" : "s"} ${issue.keys.join(", ")}`;
    case "invalid_key": {
      const why = issue.issues.map((inner) => inner.message).join("; ");
      return `has an invalid key ${show(issue.path[issue.path.length - 1])}${why ? ` (${why})` : ""}`;
    }
    default:
      return `is not valid (${issue.message})`;
  }
}

/** One message for every issue, each naming its field through `nameOf`. */
export function formatIssues(error: z.ZodError, input: unknown, nameOf: FieldNamer = payloadFieldName): string {
  return error.issues
    .map((issue) => {
      // An unknown key belongs to the object that holds it, so name that object's keys instead.
      const subject =
        issue.code === "unrecognized_keys" && issue.path.length === 0
          ? "request"
          : issue.code === "invalid_key"
            ? nameOf(issue.path.slice(0, -1))
            : nameOf(issue.path);
      return `${subject} ${describeIssue(issue, valueAt(input, issue.path))}`;
    })
    .join("; ");
}

/**
 * Parses `input` with `schema`, or throws PyroError INVALID_ARGUMENT whose message starts with the
 * operation so a caller juggling several calls knows which one was refused.
 */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  input: unknown,
  operation: string,
  nameOf: FieldNamer = payloadFieldName,
): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new PyroError("INVALID_ARGUMENT", `${operation}: ${formatIssues(parsed.error, input, nameOf)}`);
}
