// Owns the text rendering of workspace payloads for the `pyro workspace` commands, and the names
// their positionals go by in error messages.
import type { Command } from "../../../contract/schemas.js";
import type {
  CommandLogEntry,
  FileListResult,
  FileReadResult,
  NetworkLogEntry,
  SnapshotInfo,
  WorkspaceInfo,
  WorkspaceListResult,
  WorkspaceSummary,
} from "../../../contract/workspace.js";
import type { Output } from "../../output.js";
import { table } from "../../table.js";

/** Payload fields → the positionals the usage line shows, for parseFlags. */
export const POSITIONALS = { workspace: "WS", path: "PATH", source_path: "SOURCE_PATH", environment: "ENV" } as const;

/** A word as a POSIX shell would need it quoted. */
function shellWord(word: string): string {
  return /^[\w./:=@%+,-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

export function commandText(command: Command): string {
  return typeof command === "string" ? command : command.map(shellWord).join(" ");
}

function labelsText(labels: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(labels).map(([key, value]) => `${key}=${value}`);
  return pairs.length === 0 ? "none" : pairs.join(", ");
}

function seedText(seed: WorkspaceInfo["workspace_seed"]): string {
  if (seed.mode === "empty") return "empty";
  const count = seed.entry_count === undefined ? "" : `, ${seed.entry_count} entries`;
  const skipped = seed.skipped?.length ? `, ${seed.skipped.length} skipped` : "";
  return `${seed.mode === "directory" ? "directory" : "archive"} ${seed.seed_path ?? ""}${count}${skipped}`;
}

function networkText(info: WorkspaceInfo): string {
  const rules = info.network_rules;
  if (!rules) return info.network_policy;
  const allow = rules.allow.length === 0 ? "nothing" : rules.allow.join(", ");
  return `allowlist: allow ${allow}${rules.deny.length > 0 ? `; deny ${rules.deny.join(", ")}` : ""}`;
}

/** One line per network log entry: time, decision, what, and why. */
export function networkRows(entries: readonly NetworkLogEntry[]): string {
  if (entries.length === 0) return "no network activity logged yet\n";
  return table([
    ["TIME", "KIND", "DECISION", "DESTINATION", "BYTES OUT/IN", "REASON"],
    ...entries.map((e) => [
      e.time,
      e.kind,
      e.decision,
      `${e.name ?? e.address ?? "?"}${e.port === undefined ? "" : `:${e.port}`}`,
      e.bytes_out === undefined ? "-" : `${e.bytes_out}/${e.bytes_in ?? 0}`,
      e.reason,
    ]),
  ]);
}

/** The disk's limit and use: "312 of 8192 MiB used", or that there is no limit. */
function diskText(info: WorkspaceInfo): string {
  if (info.disk_mib === null) return "no limit (doctor says why)";
  return info.disk_used_mib === null ? `${info.disk_mib} MiB` : `${info.disk_used_mib} of ${info.disk_mib} MiB used`;
}

/** `key:  value` lines describing one workspace (create, status, update, stop, start). */
export function describeWorkspace(info: WorkspaceInfo): string {
  const rows: [string, string][] = [
    ["workspace", info.workspace_id],
    ["name", info.name ?? "none"],
    ["state", info.stopped_reason ? `${info.state} (${info.stopped_reason})` : info.state],
    ["environment", `${info.environment} on ${info.engine}`],
    ["resources", `${info.vcpu_count} vCPU, ${info.mem_mib} MiB, ${info.process_limit} processes`],
    ["disk", diskText(info)],
    ["network", networkText(info)],
    ...(info.trusted_ca
      ? [
          ["trusted CAs", `${info.trusted_ca.certificates} from ${info.trusted_ca.sources.join(", ")}`] as [
            string,
            string,
          ],
        ]
      : []),
    ...(info.host_proxy
      ? [["host proxy", info.host_proxy.https ?? info.host_proxy.http ?? ""] as [string, string]]
      : []),
    ["seed", seedText(info.workspace_seed)],
    ["labels", labelsText(info.labels)],
    ["created", info.created_at],
    ["last activity", info.last_activity_at],
    ["expires", info.expires_at ?? "never (ttl 0)"],
    ["commands", `${info.command_count} run, ${info.reset_count} reset${info.reset_count === 1 ? "" : "s"}`],
  ];
  const skipped = info.workspace_seed.skipped ?? [];
  return (
    table(rows.map(([key, value]) => [`${key}:`, value])) + skipped.map((entry) => `  not seeded: ${entry}\n`).join("")
  );
}

export function workspaceRows(list: WorkspaceListResult): string {
  if (list.count === 0) return "no workspaces; create one with pyro workspace create debian:12\n";
  return table([
    ["ID", "NAME", "STATE", "ENVIRONMENT", "LAST ACTIVITY", "LABELS"],
    ...list.workspaces.map((w) => [
      w.workspace_id,
      w.name ?? "-",
      w.state,
      w.environment,
      w.last_activity_at,
      Object.keys(w.labels).length === 0 ? "-" : labelsText(w.labels),
    ]),
  ]);
}

function commandRow(entry: CommandLogEntry): string[] {
  const outcome = entry.timed_out ? "timed out" : entry.cancelled ? "cancelled" : `exit ${entry.exit_code}`;
  return [`#${entry.sequence}`, outcome, `${entry.duration_ms} ms`, entry.cwd, commandText(entry.command)];
}

export function commandRows(commands: readonly CommandLogEntry[]): string {
  if (commands.length === 0) return "no commands run yet\n";
  return table(commands.map(commandRow));
}

export function describeSummary(summary: WorkspaceSummary): string {
  const { commands, changes } = summary;
  let text = `workspace ${summary.workspace_id}${summary.name ? ` (${summary.name})` : ""}: ${summary.state}\n`;
  text += `commands: ${commands.total} run, ${commands.failed} failed\n`;
  if (commands.last.length > 0) text += table(commands.last.map((c) => ["  ", ...commandRow(c)]));
  if (summary.state !== "running") text += "changes: unknown while the workspace is not running\n";
  else if (!changes.changed) text += "changes: none since create\n";
  else {
    const counts = (["added", "modified", "deleted", "type_changed"] as const)
      .filter((kind) => changes[kind] > 0)
      .map((kind) => `${changes[kind]} ${kind.replace("_", " ")}`);
    text += `changes: ${changes.total} since create (${counts.join(", ")})\n`;
    text += table(changes.files.map((f) => ["  ", f.status, f.path]));
  }
  if (summary.exports.length > 0) {
    text += "exports:\n";
    text += table(summary.exports.map((e) => ["  ", e.workspace_path, "->", e.output_path]));
  }
  text += `resets: ${summary.reset_count}\n`;
  return text;
}

export function fileRows(result: FileListResult): string {
  if (result.entries.length === 0) return "";
  return table(
    result.entries.map((entry) => [
      entry.path,
      entry.artifact_type,
      String(entry.size_bytes),
      ...(entry.link_target === undefined ? [] : [`-> ${entry.link_target}`]),
    ]),
  );
}

export function snapshotRows(snapshots: readonly SnapshotInfo[]): string {
  return table([
    ["SNAPSHOT", "CREATED", "FILES", "BYTES", "SHARED"],
    ...snapshots.map((s) => [
      s.snapshot_name,
      s.created_at,
      String(s.file_count),
      String(s.size_bytes),
      String(s.shared_bytes),
    ]),
  ]);
}

/** A file listing (file list on a running workspace, disk list on a stopped one). */
export function showFileList(out: Output, result: FileListResult): void {
  out.result(result, { stdout: fileRows(result) });
  out.status({
    workspace_id: result.workspace_id,
    path: result.path,
    recursive: result.recursive,
    count: result.entries.length,
    truncated: result.truncated || undefined,
  });
}

/** A file's content on stdout and, unless `contentOnly`, a status line saying if it was cut short. */
export function showFileRead(out: Output, result: FileReadResult, contentOnly = false): void {
  out.result(result, { stdout: result.content });
  if (contentOnly) return;
  out.status({
    workspace_id: result.workspace_id,
    path: result.path,
    size_bytes: result.size_bytes,
    truncated: result.truncated,
  });
}
