// Owns the text rendering of the `pyro workspace service` commands.
import type { ServiceInfo, ServiceListResult } from "../../../../contract/interactive.js";
import type { StatusValue } from "../../../output.js";
import { table } from "../../../table.js";

/** Payload fields → the positionals the usage lines show, for parseFlags. */
export const SERVICE_POSITIONALS = { workspace: "WS", service_name: "NAME", command: "CMD" } as const;

function portsText(info: ServiceInfo): string {
  return info.published_ports.map((p) => `${p.host}:${p.host_port}->${p.guest_port}`).join(", ");
}

export function serviceStatus(info: ServiceInfo): Record<string, StatusValue> {
  return {
    workspace_id: info.workspace_id,
    service: info.service_name,
    state: info.state,
    pid: info.pid ?? undefined,
    exit_code: info.exit_code ?? undefined,
    ports: portsText(info) || undefined,
  };
}

/** `key:  value` lines for one service; a failed one adds its reason and last log lines. */
export function describeService(info: ServiceInfo): string {
  const rows: [string, string][] = [
    ["service", info.service_name],
    ["state", info.state + (info.exit_code === null ? "" : ` (exit code ${info.exit_code})`)],
    ["started", info.started_at],
    ["ready", info.ready_at ?? "-"],
    ["ports", portsText(info) || "none"],
  ];
  if (info.reason) rows.push(["reason", info.reason]);
  let text = table(rows.map(([key, value]) => [`${key}:`, value]));
  if (info.log_tail) {
    const lines = [info.log_tail.stdout, info.log_tail.stderr].filter((s) => s.trim() !== "").join("");
    if (lines) text += `last log lines:\n${lines.replace(/^/gm, "  ")}${lines.endsWith("\n") ? "" : "\n"}`;
  }
  return text;
}

export function serviceRows(list: ServiceListResult): string {
  if (list.count === 0) return "no services; start one with pyro workspace service start WS NAME -- CMD\n";
  return table([
    ["SERVICE", "STATE", "PID", "EXIT", "PORTS"],
    ...list.services.map((s) => [
      s.service_name,
      s.state,
      s.pid === null ? "-" : String(s.pid),
      s.exit_code === null ? "-" : String(s.exit_code),
      portsText(s) || "-",
    ]),
  ]);
}
