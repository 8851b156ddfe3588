// Owns `pyro workspace update`: renaming a workspace, changing its labels, and changing an
// allowlist's network rules while it runs.
import { Command, Option, UsageError } from "clipanion";
import { WorkspaceUpdateParams } from "../../../contract/workspace.js";
import { PyroCommand } from "../../base.js";
import { keyValues, parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import { describeWorkspace, POSITIONALS } from "./render.js";

export class WorkspaceUpdateCommand extends PyroCommand {
  static override paths = [["workspace", "update"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "rename a workspace, change its labels or its network rules",
    details: `
      Gives \`WS\` a new unique \`--name\`, sets labels with \`--label KEY=VALUE\` (merged into the existing ones) and removes them with \`--clear-label KEY\`; both may be repeated.

      Under network policy allowlist, \`--allow-host\`, \`--deny-host\` and \`--allow-preset\` add rules and \`--remove-host RULE\` removes one as written (all repeatable). A running workspace's gateway takes them at once: new lookups and connections follow the new rules, connections already open go on.
    `,
    examples: [
      ["Rename a workspace", "$0 workspace update ws-0123456789 --name repro-fix"],
      ["Set one label and remove another", "$0 workspace update repro-fix --label owner=codex --clear-label draft"],
      ["Let a running workspace reach PyPI too", "$0 workspace update repro-fix --allow-preset pypi"],
      ["Stop allowing a host", "$0 workspace update repro-fix --remove-host api.example.com"],
    ],
  });

  workspace = Option.String({ name: "WS" });
  name = Option.String("--name", { description: "The new unique name" });
  labels = Option.Array("--label", { description: "KEY=VALUE label to set (repeatable)" });
  clearLabels = Option.Array("--clear-label", { description: "Label KEY to remove (repeatable)" });
  allowHosts = Option.Array("--allow-host", { description: "allowlist: HOST[:PORT] rule to add (repeatable)" });
  denyHosts = Option.Array("--deny-host", { description: "allowlist: HOST[:PORT] deny rule to add (repeatable)" });
  allowPresets = Option.Array("--allow-preset", { description: "allowlist: add a preset's rules (repeatable)" });
  removeHosts = Option.Array("--remove-host", { description: "allowlist: rule to remove, as written (repeatable)" });

  protected async perform(out: Output): Promise<undefined> {
    const changes = [
      this.name,
      this.labels,
      this.clearLabels,
      this.allowHosts,
      this.denyHosts,
      this.allowPresets,
      this.removeHosts,
    ];
    if (changes.every((change) => change === undefined)) {
      throw new UsageError(
        "nothing to update: give --name, --label, --clear-label, --allow-host, --deny-host, --allow-preset or --remove-host",
      );
    }
    const params = parseFlags(
      WorkspaceUpdateParams,
      {
        workspace: this.workspace,
        name: this.name,
        labels: keyValues("--label", this.labels),
        clear_labels: this.clearLabels,
        allow_hosts: this.allowHosts,
        deny_hosts: this.denyHosts,
        allow_presets: this.allowPresets,
        remove_hosts: this.removeHosts,
      },
      {
        ...POSITIONALS,
        labels: "--label",
        clear_labels: "--clear-label",
        allow_hosts: "--allow-host",
        deny_hosts: "--deny-host",
        allow_presets: "--allow-preset",
        remove_hosts: "--remove-host",
      },
    );
    const info = await (await this.context.manager()).workspaces.update(params);
    out.result(info, { stdout: describeWorkspace(info) });
    out.status({ workspace_id: info.workspace_id, name: info.name, labels: Object.keys(info.labels).length });
    return undefined;
  }
}
