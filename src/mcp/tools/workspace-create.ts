// Owns the `workspace_create` tool: a persistent sandbox, optionally seeded from the host.

import { z } from "zod";
import { WorkspaceCreateParams, WorkspaceInfo } from "../../contract/workspace.js";
import type { HostPaths } from "../host-paths.js";
import { withProjectSeed } from "../project.js";
import { asRequest, buildNote, defineTool, type ToolContext } from "../tool.js";

const description = (network: string) =>
  [
    "Create and start a persistent, isolated Linux workspace: a sandbox whose /workspace directory,",
    "installed packages and files survive between calls, for multi-step work such as reproducing a bug,",
    "editing, building and testing. Use vm_run instead for a single self-contained command.",
    "`seed_path` copies a host directory or .tar/.tar.gz/.tgz archive (e.g. the project checkout) into",
    "/workspace; what /workspace holds when this returns is the baseline that workspace_diff compares",
    "against and workspace_reset restores. Give it a unique `name` to refer to it by name later; every",
    "workspace tool's `workspace` argument takes the id or the name.",
    network,
    "It expires after `ttl_seconds` idle (default 600; 0 = never); delete it with workspace_delete when done.",
    "Returns the workspace: workspace_id, name, labels, environment, engine, state, resources, seed,",
    "created_at, last_activity_at and expires_at.",
    buildNote,
  ].join(" ");

type CreateArgs = z.output<typeof WorkspaceCreateParams>;

/** The caller's host paths, checked against the server's policy and made absolute. */
async function allowedPaths<A extends Partial<CreateArgs>>(args: A, hostPaths: HostPaths): Promise<A> {
  const seed_path = args.seed_path === undefined ? undefined : await hostPaths.source(args.seed_path, "seed_path");
  const secrets =
    args.secrets &&
    (await Promise.all(
      args.secrets.map(async (s) =>
        s.file_path === undefined
          ? s
          : { ...s, file_path: await hostPaths.file(s.file_path, `secret ${s.name}'s file_path`) },
      ),
    ));
  const ca_files =
    args.ca_files && (await Promise.all(args.ca_files.map((file) => hostPaths.file(file, "ca_files entry"))));
  return {
    ...args,
    ...(seed_path !== undefined && { seed_path }),
    ...(secrets && { secrets }),
    ...(ca_files && { ca_files }),
  };
}

/** The create arguments with no network and no host files: inspect mode's create. */
export const OfflineCreateParams = WorkspaceCreateParams.omit({
  network_policy: true,
  allow_hosts: true,
  deny_hosts: true,
  allow_presets: true,
  ca_files: true,
  host_ca: true,
  host_proxy: true,
  secrets: true,
});

/** Every profile's create: host paths checked, and the project seeded when no seed_path is given. */
async function create(raw: Partial<CreateArgs>, { manager, progress, project, hostPaths }: ToolContext) {
  const args = asRequest(WorkspaceCreateParams, await allowedPaths(raw, hostPaths), "workspace_create");
  if (args.seed_path !== undefined || !project) return manager.workspaces.create(args, { progress });
  // The project source is produced afresh for each workspace and removed once it is seeded.
  return withProjectSeed(project, (seed_path) =>
    manager.workspaces.create({ ...args, seed_path }, { progress, seedOrigin: project.origin }),
  );
}

/** workspace-core's create: no secrets and no free-form network rules, but the allowlist with named
 * presets, which reaches only the package registries it names. */
const CoreCreateParams = WorkspaceCreateParams.omit({
  allow_hosts: true,
  deny_hosts: true,
  ca_files: true,
  secrets: true,
}).extend({
  network_policy: z
    .enum(["off", "allowlist"])
    .default("off")
    .describe(
      "off (default): no network. allowlist: only the package registries named in allow_presets, over TLS or HTTP.",
    ),
});

export const workspaceCreate = defineTool({
  name: "workspace_create",
  title: "Create a persistent workspace",
  description: description(
    [
      "The workspace has no network unless `network_policy` is allowlist with `allow_presets` (npm, pypi,",
      "debian, github): then it reaches those registries and nothing else, enough to install dependencies.",
      "`host_ca: true` makes it also trust the host's whole system CA bundle, and `host_proxy: true` go out",
      "through the host's explicit proxy (HTTPS_PROXY) when the host has one.",
    ].join(" "),
  ),
  inputSchema: CoreCreateParams,
  outputSchema: WorkspaceInfo,
  // Each call starts another sandbox; create itself reaches nothing outside (commands run later may,
  // under a network policy the caller chose).
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  call: (args, ctx) => create(args, ctx),
});

/** workspace-full's create: also a network policy and secrets. */
export const workspaceCreateFull = defineTool({
  ...workspaceCreate,
  description: description(
    [
      "`network_policy` is off (default: loopback only), egress (outbound network),",
      "egress+published-ports (also lets service_start publish ports on the host's 127.0.0.1) or allowlist:",
      "only the names in `allow_hosts` (HOST[:PORT], *.example.com) and `allow_presets` (npm, pypi, debian,",
      "github) are reachable, over TLS or HTTP, and `deny_hosts` wins; workspace_update changes them live",
      "and workspace_logs with network: true shows every decision. The host's own loopback services are",
      "never reachable. `host_proxy: true` goes out through the host's explicit proxy (HTTPS_PROXY, HTTP_PROXY,",
      "NO_PROXY). `secrets` ([{name, value} or {name, file_path}]) are",
      "kept out of records and redacted as [REDACTED] from every output; a process sees one only when a",
      "call maps it with `secret_env` ({NAME: 'ENV_VAR'}).",
    ].join(" "),
  ),
  inputSchema: WorkspaceCreateParams,
  call: (args, ctx) => create(args, ctx),
});
