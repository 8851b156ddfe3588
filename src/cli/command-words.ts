// Owns how the words after `--` become a contract `command`, the way ssh does it: several words are
// an argv; one word that holds spaces or shell syntax is a script for /bin/sh -lc (so
// `pyro run ENV -- 'make && make test'` works); one plain word is an argv of one.
import type { Command } from "../contract/schemas.js";

const SHELL_SYNTAX = /[\s|&;<>()$`\\"'*?[\]#~{}]/;

/** undefined when there are no words at all: the caller reports what is missing. */
export function commandFromWords(words: readonly string[]): Command | undefined {
  const [first, ...rest] = words;
  if (first === undefined) return undefined;
  if (rest.length > 0) return [first, ...rest];
  // An empty word stays a string so the schema rejects it as an empty command.
  if (first.trim() === "" || SHELL_SYNTAX.test(first)) return first;
  return [first];
}
