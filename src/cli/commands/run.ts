// Owns `pyro run`: one command in a throwaway sandbox, exiting with the command's own exit code.
import { Command, Option, UsageError } from "clipanion";
import * as t from "typanion";
import { DEFAULTS, LIMITS } from "../../contract/defaults.js";
import { RunParams } from "../../contract/schemas.js";
import { PyroCommand } from "../base.js";
import { commandFromWords } from "../command-words.js";
import { parseFlags } from "../flags.js";
import { guestStreams, type Output, streamedOutput } from "../output.js";

export class RunCommand extends PyroCommand {
  static override paths = [["run"]];

  static override usage = Command.Usage({
    category: "Sandboxes",
    description: "run one command in a disposable sandbox",
    details: `
      Starts a fresh sandbox from \`ENV\`, runs \`CMD\` in its empty \`/workspace\`, prints the command's stdout and stderr on pyro's own stdout and stderr, and destroys the sandbox. pyro exits with the command's exit code (124 when \`--timeout-seconds\` killed it).

      Several words after \`--\` run as an argv, without a shell. A single word that contains spaces or shell syntax runs through \`/bin/sh -lc\`, as ssh does, so pipes and \`&&\` work when quoted. An environment that is not installed yet is built first.

      The sandbox has no network unless \`--network\` is given; with it, it reaches the outside but never the host's own services. Defaults: ${DEFAULTS.vcpuCount} vCPU, ${DEFAULTS.memMib} MiB, ${DEFAULTS.timeoutSeconds} s, engine \`${DEFAULTS.engine}\`.
    `,
    examples: [
      ["Run Git in the default environment", "$0 run debian:12 -- git --version"],
      ["Run a shell pipeline", "$0 run debian:12 -- 'ls -la / | wc -l'"],
      ["Get the result as JSON", "$0 run debian:12 --json -- uname -a"],
      [
        "Give it more memory, network access and a longer timeout",
        "$0 run debian:12 --mem-mib 2048 --network --timeout-seconds 120 -- curl -sI https://deb.debian.org",
      ],
    ],
  });

  environment = Option.String({ name: "ENV" });
  vcpuCount = Option.String("--vcpu-count", {
    validator: t.isNumber(),
    description: `Virtual CPUs (${LIMITS.vcpuCount.min}-${LIMITS.vcpuCount.max}, default ${DEFAULTS.vcpuCount})`,
  });
  memMib = Option.String("--mem-mib", {
    validator: t.isNumber(),
    description: `Memory in MiB (${LIMITS.memMib.min}-${LIMITS.memMib.max}, default ${DEFAULTS.memMib})`,
  });
  timeoutSeconds = Option.String("--timeout-seconds", {
    validator: t.isNumber(),
    description: `Kill the command after this many seconds (default ${DEFAULTS.timeoutSeconds})`,
  });
  network = Option.Boolean("--network", false, { description: "Give the sandbox outbound network access" });
  engine = Option.String("--engine", { description: "auto, gvisor, qemu or firecracker (default auto)" });
  words = Option.Rest({ name: "CMD" });

  protected override readonly handlesInterrupt = true;

  protected async perform(out: Output): Promise<number> {
    const command = commandFromWords(this.words);
    if (command === undefined) {
      throw new UsageError(`pyro run needs a command after --, e.g. pyro run ${this.environment} -- git --version`);
    }
    const params = parseFlags(
      RunParams,
      {
        environment: this.environment,
        command,
        vcpu_count: this.vcpuCount,
        mem_mib: this.memMib,
        timeout_seconds: this.timeoutSeconds,
        network: this.network,
        engine: this.engine,
      },
      { environment: "ENV", command: "CMD" },
    );
    const manager = await this.context.manager();
    const { signal, stdout, stderr } = this.context;
    // Text mode shows the output as it comes (a long build's progress, a server's log).
    const { onOutput, rest: restOf } = streamedOutput(out.json, stdout, stderr);
    const result = await manager.run(params, { signal, progress: out.progress(), onOutput });
    const rest = restOf(result);
    if (signal.aborted) {
      // Interrupted while the command ran: the guest was killed for us, so its exit code (137) is
      // not the command's. Show what it printed, as a terminal would have, and report the interrupt.
      if (!out.json) out.result(result, rest);
      return out.interrupted(String(signal.reason));
    }
    out.result(result, out.json ? guestStreams(result) : rest);
    out.status({
      environment: result.environment,
      engine: result.execution_mode,
      exit_code: result.exit_code,
      duration_ms: result.duration_ms,
      timed_out: result.timed_out || undefined,
      stdout_truncated: result.stdout_truncated || undefined,
      stderr_truncated: result.stderr_truncated || undefined,
    });
    return result.exit_code;
  }
}
