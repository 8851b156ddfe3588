// Owns the words for file-system failures the guest's own content causes, so they reach the user
// as their problem with a fix rather than as "a bug in pyro". Node turns a file name that is not
// UTF-8 into U+FFFD, and the mangled name then names nothing (ENOENT).
import type { Handler } from "../channel/channel.js";
import { PyroError } from "../contract/errors.js";

export function explainFsError(err: unknown): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e instanceof PyroError || typeof e?.path !== "string") return err;
  if (e.code === "ENOENT" && e.path.includes("\uFFFD")) {
    return new PyroError(
      "INVALID_ARGUMENT",
      `a file name in ${e.path.replace(/\/[^/]*\uFFFD.*$/, "") || "/"} is not valid UTF-8 (shown as ${JSON.stringify(e.path)}), which pyro cannot list, read or export yet; rename it inside the workspace (ls -b shows its bytes) and try again`,
    );
  }
  return err;
}

/** The same handlers, each failure passed through explainFsError. */
export function explainingFsErrors(handlers: Record<string, Handler>): Record<string, Handler> {
  return Object.fromEntries(
    Object.entries(handlers).map(([op, handler]) => [
      op,
      async (params, ctx) => {
        try {
          return await handler(params, ctx);
        } catch (err) {
          throw explainFsError(err);
        }
      },
    ]),
  );
}
