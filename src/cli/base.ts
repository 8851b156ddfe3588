// Owns what every pyro command shares: the --json flag, one Output per run, and the mapping of
// outcomes to exit codes (0 done, 1 operation failed, 2 usage error, 130/143 interrupted; `run`
// returns the guest's own code). Subclasses implement perform() and never print errors themselves.
import { Command, Option, UsageError } from "clipanion";
import type { PyroContext } from "./context.js";
import { Output } from "./output.js";

class Interrupted extends Error {}

export abstract class PyroCommand extends Command<PyroContext> {
  json = Option.Boolean("--json", false, {
    description: "Print one JSON object (keys sorted) on stdout instead of text",
  });

  /**
   * Whether perform() passes context.signal to the manager and winds down itself (a sandbox must
   * be torn down). Otherwise an interrupt ends the command at once.
   */
  protected readonly handlesInterrupt: boolean = false;

  protected abstract perform(out: Output): Promise<number | undefined>;

  async execute(): Promise<number> {
    const { stdout, stderr, signal, interactive, env } = this.context;
    const out = new Output({
      stdout,
      stderr,
      json: this.json,
      label: this.path.join(" "),
      interactive,
      debug: Boolean(env.PYRO_DEBUG),
    });
    try {
      const work = this.perform(out);
      return (await (this.handlesInterrupt ? work : untilInterrupted(work, signal))) ?? 0;
    } catch (err) {
      if (signal.aborted) return out.interrupted(String(signal.reason));
      if (err instanceof UsageError) return out.usageError(err.message, this.cli.usage(this));
      return out.failure(err);
    } finally {
      out.stopProgress();
    }
  }
}

function untilInterrupted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Interrupted());
  let onAbort: () => void = () => {};
  const interrupted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new Interrupted());
    signal.addEventListener("abort", onAbort, { once: true });
  });
  return Promise.race([work, interrupted]).finally(() => signal.removeEventListener("abort", onAbort));
}
