// Owns `pyro doctor`: host checks, the engine `auto` picks and why, and crash leftovers.
import { Command, Option } from "clipanion";
import type { DoctorResult } from "../../contract/schemas.js";
import { DoctorParams } from "../../sdk/params.js";
import { PyroCommand } from "../base.js";
import { parseFlags } from "../flags.js";
import type { Output } from "../output.js";
import { table } from "../table.js";

function render(report: DoctorResult): string {
  const lines: string[] = [];
  lines.push(
    table([
      ["platform:", report.platform],
      ["pyro:", report.pyro_version],
      ["engine:", `${report.engine.selected ?? "none"} (${report.engine.reason})`],
      ["state dir:", report.state_dir],
      ["cache dir:", report.cache_dir],
    ]),
  );
  lines.push("engines:\n");
  lines.push(
    table(
      report.engine.engines.map((engine) => [
        `  ${engine.name}`,
        engine.available ? "available" : "unavailable",
        engine.detail,
      ]),
    ),
  );
  lines.push("checks:\n");
  for (const check of report.checks) {
    lines.push(`  ${check.ok ? "PASS" : "FAIL"}  ${check.name}: ${check.detail}\n`);
    if (!check.ok && check.fix) lines.push(`        fix: ${check.fix}\n`);
  }
  lines.push("environments:\n");
  for (const env of report.environments)
    lines.push(`  ${env.name.padEnd(16)} ${env.installed ? "installed" : "not installed"}\n`);
  if (report.daily_loop) {
    lines.push(
      `daily loop: ${report.daily_loop.environment} is ${report.daily_loop.state} (${report.daily_loop.detail})\n`,
    );
  }
  const { found, repaired, items } = report.leftovers;
  lines.push(`leftovers: ${found} found, ${repaired} repaired\n`);
  for (const item of items) lines.push(`  ${item}\n`);
  if (items.length > 0 && repaired === 0) lines.push("  fix: pyro doctor --repair\n");
  return lines.join("");
}

export class DoctorCommand extends PyroCommand {
  static override paths = [["doctor"]];

  static override usage = Command.Usage({
    category: "Host",
    description: "check the host, the engines and leftovers of crashed sandboxes",
    details: `
      Checks the host programs and capabilities pyro needs, shows which engine \`--engine auto\` selects and why the others were passed over, and lists what crashed sandboxes left behind (mounts, network namespaces, sandbox directories). Each failed check says how to fix it.

      \`--environment ENV\` also checks that \`ENV\` is installed and its guest agent is current, and says whether its daily loop is warm (prepared with this build by \`pyro prepare\`), cold (never prepared) or stale (prepared with another build, agent or pyro). \`--repair\` cleans up the leftovers it finds.

      Exits 1 when a check fails or no engine can run.
    `,
    examples: [
      ["Check the host", "$0 doctor"],
      ["Also check the default environment", "$0 doctor --environment debian:12"],
      ["Clean up after a crash", "$0 doctor --repair"],
    ],
  });

  environment = Option.String("--environment", { description: "Also check that this environment is ready" });
  repair = Option.Boolean("--repair", false, { description: "Clean up leftovers of crashed sandboxes" });

  protected async perform(out: Output): Promise<number> {
    const params = parseFlags(DoctorParams, { environment: this.environment, repair: this.repair });
    const report = await (await this.context.manager()).doctor(params);
    out.result(report, { stdout: render(report) });
    const failed = report.checks.filter((check) => !check.ok).length;
    out.status({
      ok: report.ok,
      engine: report.engine.selected,
      failed_checks: failed,
      leftovers: report.leftovers.found - report.leftovers.repaired,
      daily_loop: report.daily_loop?.state,
    });
    if (report.ok) return 0;
    const why = report.engine.selected === null ? "no engine can run here" : `${failed} check(s) failed`;
    out.problem(`${why}; see the fixes above`);
    return 1;
  }
}
