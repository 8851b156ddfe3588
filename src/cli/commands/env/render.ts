// Owns the text rendering of an environment for `env inspect` and `env pull`.
import type { EnvironmentInspect } from "../../../contract/schemas.js";
import { table } from "../../table.js";

function megabytes(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(0)} MiB`;
}

/** `key  value` lines describing an environment and, when installed, its build. */
export function describeInstall(env: EnvironmentInspect): string {
  const rows: string[][] = [
    ["name", env.name],
    ["description", env.description],
    ["version", env.version],
    ["installed", env.installed ? "yes" : "no"],
  ];
  if (env.path) rows.push(["path", env.path]);
  const manifest = env.manifest;
  if (manifest) {
    rows.push(
      ["built", `${manifest.created_at} in ${manifest.build_seconds.toFixed(1)} s`],
      ["size", `${megabytes(manifest.rootfs_size_bytes)}, ${manifest.rootfs_file_count} files`],
      ["rootfs digest", manifest.rootfs_digest],
      ["agent", `${manifest.agent_version}${env.agent_current ? "" : " (outdated: run pyro env pull --force)"}`],
    );
  }
  rows.push(["packages", env.packages.join(" ")]);
  return table(rows.map(([key, value]) => [`${key}:`, value ?? ""]));
}
