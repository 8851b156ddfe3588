// Owns secret redaction: every piece of text that crosses back to a caller (exec output, shell
// reads, service logs, error messages, command records) passes through a Redactor holding the
// workspace's secret values, and each occurrence becomes [REDACTED]. Output read in pieces is
// handled too: a read can look behind its start, and can hold back an end that may be the first
// part of a secret completed by the next piece.
import { PyroError } from "../contract/errors.js";

export const REDACTED = "[REDACTED]";

export class Redactor {
  /** Longest first, so a secret containing another is replaced whole. */
  private readonly secrets: string[];
  private readonly longest: number;

  constructor(values: Iterable<string>) {
    this.secrets = [...new Set([...values].filter((v) => v.length > 0))].sort((a, b) => b.length - a.length);
    this.longest = this.secrets[0]?.length ?? 0;
  }

  get empty(): boolean {
    return this.secrets.length === 0;
  }

  /** Bytes of context a piece needs from before its start to catch a secret it begins inside. */
  get lookbehindBytes(): number {
    return this.longest * 4;
  }

  redact(text: string): string {
    if (this.empty || text.length === 0) return text;
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join(REDACTED);
    return out;
  }

  /** Every string in a result redacted, file names and paths included; `workspace_id` is kept so
   * the result still names its workspace. */
  redactDeep<T>(value: T): T {
    if (this.empty) return value;
    const walk = (v: unknown, key?: string): unknown => {
      if (typeof v === "string") return key === "workspace_id" ? v : this.redact(v);
      if (Array.isArray(v)) return v.map((item) => walk(item));
      if (v !== null && typeof v === "object") {
        return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, walk(item, k)]));
      }
      return v;
    };
    return walk(value) as T;
  }

  /**
   * Redacts `text`, which continues `before` (already shown, not returned): a secret that starts in
   * `before` and ends in `text` has its part in `text` replaced. With `holdBack`, an end of `text`
   * that is the beginning of a secret is not returned (its length is `held`), so the next piece,
   * read from there, sees the whole secret.
   */
  redactPiece(before: string, text: string, opts: { holdBack: boolean }): { text: string; held: number } {
    if (this.empty) return { text, held: 0 };
    const context = before.slice(-this.longest);
    const joined = context + text;
    // Mark every character covered by an occurrence, then rebuild the visible part.
    const covered = new Uint8Array(joined.length);
    for (const secret of this.secrets) {
      for (let at = joined.indexOf(secret); at !== -1; at = joined.indexOf(secret, at + 1)) {
        covered.fill(1, at, at + secret.length);
      }
    }
    let held = 0;
    if (opts.holdBack) held = this.partialSecretAtEnd(joined, covered);
    let out = "";
    let inSecret = false;
    for (let i = context.length; i < joined.length - held; i++) {
      if (covered[i]) {
        if (!inSecret) out += REDACTED;
        inSecret = true;
      } else {
        inSecret = false;
        out += joined[i];
      }
    }
    return { text: out, held };
  }

  /** Length of the longest uncovered end of `joined` that a secret begins with. */
  private partialSecretAtEnd(joined: string, covered: Uint8Array): number {
    for (let len = Math.min(this.longest - 1, joined.length); len > 0; len--) {
      const tail = joined.slice(joined.length - len);
      if (covered[joined.length - len]) continue;
      if (this.secrets.some((s) => s.length > len && s.startsWith(tail))) return len;
    }
    return 0;
  }

  /** The same error with its message (and details) redacted. */
  redactError(err: unknown): unknown {
    if (this.empty) return err;
    if (err instanceof PyroError) {
      const redacted = new PyroError(err.code, this.redact(err.message));
      return redacted;
    }
    if (err instanceof Error) {
      const copy = new Error(this.redact(err.message));
      copy.name = err.name;
      return copy;
    }
    return err;
  }
}

export const NO_SECRETS = new Redactor([]);
