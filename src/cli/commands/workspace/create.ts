// Owns `pyro workspace create`: a persistent sandbox, optionally seeded from a host directory or
// archive; what /workspace holds when it returns is the baseline diff and reset work against.
import { Command, Option } from "clipanion";
import * as t from "typanion";
import { DEFAULTS, LIMITS } from "../../../contract/defaults.js";
import { PRESETS } from "../../../contract/egress-rules.js";
import { WorkspaceCreateParams } from "../../../contract/workspace.js";
import { PyroCommand } from "../../base.js";
import { keyValues, parseFlags, secretFlags } from "../../flags.js";
import type { Output } from "../../output.js";
import { describeWorkspace, POSITIONALS } from "./render.js";

export class WorkspaceCreateCommand extends PyroCommand {
  static override paths = [["workspace", "create"]];

  static override usage = Command.Usage({
    category: "Workspaces",
    description: "create and start a persistent workspace",
    details: `
      Starts a sandbox from \`ENV\` (default \`${DEFAULTS.environment}\`) that keeps its \`/workspace\` and its processes between commands, until it is deleted or stays idle for \`--ttl-seconds\` (default ${DEFAULTS.ttlSeconds}; 0 keeps it forever).

      \`--seed-path\` copies a host directory or a .tar, .tar.gz or .tgz archive into \`/workspace\` first; symlinks that point outside it are left out. What \`/workspace\` holds when create returns is the baseline that \`pyro workspace diff\` compares against and \`pyro workspace reset\` restores.

      \`--network-policy\` is \`off\` (default: loopback only), \`egress\` (outbound network through a network namespace of its own) \`egress+published-ports\` (also lets \`pyro workspace service start --publish\` forward ports to the host's 127.0.0.1) or \`allowlist\`: only the names \`--allow-host HOST[:PORT]\` and \`--allow-preset\` name are reachable, by TLS or HTTP through pyro's gateway, and \`--deny-host\` wins over them (docs/network.md). \`pyro workspace update\` changes the rules while it runs. The host's own loopback services are unreachable under every policy.

      \`--secret-host NAME=HOST[,HOST]\` (network policy allowlist) binds a secret to hosts: the guest only ever holds a placeholder (what \`--secret-env NAME\` gives a command), and pyro's gateway puts the value in place of the placeholder in request headers to those hosts alone, over TLS it ends with the workspace's own CA (docs/network.md).

      Environments already trust the host's own CAs from /usr/local/share/ca-certificates (added at build). \`--host-ca\` also adds the host's whole system bundle, and \`--ca-file PATH\` (repeatable) the certificates of one PEM file (a private registry's CA), for this workspace only; both point Node, Python requests and pip at the guest's bundle too (\`NODE_EXTRA_CA_CERTS\`, \`REQUESTS_CA_BUNDLE\`, \`PIP_CERT\`, \`SSL_CERT_FILE\`).

      \`--host-proxy\` is for hosts whose way out is an explicit proxy: under \`egress\` the workspace's commands, shells and services get pyro's own \`HTTPS_PROXY\`, \`HTTP_PROXY\` and \`NO_PROXY\` (a proxy on the host's loopback is refused: a sandbox cannot reach it); under \`allowlist\` the guest gets none and pyro's gateway connects through the proxy.

      \`--secret NAME=VALUE\` and \`--secret-file NAME=PATH\` (repeatable) give the workspace secrets. They are stored apart from its record in a file only its owner can read (mode 0600: root, or the user of a rootless pyro), reach a process only when a command maps them with \`--secret-env NAME[=ENV_VAR]\`, and are shown as [REDACTED] in every output.

      A \`--name\` must be unique; every other command accepts it in place of the id. \`--label KEY=VALUE\` may be repeated. \`--id-only\` prints the new id alone, for scripts.
    `,
    examples: [
      ["Create a workspace from a checkout", "$0 workspace create debian:12 --seed-path ./repo --name repro-fix"],
      [
        "Keep the id for later commands",
        'WS=$($0 workspace create debian:12 --id-only) && $0 workspace exec "$WS" -- uname -a',
      ],
      ["Label it and never let it expire", "$0 workspace create debian:12 --label issue=123 --ttl-seconds 0"],
      [
        "Install from npm and nothing else",
        "$0 workspace create debian:12 --network-policy allowlist --allow-preset npm --seed-path ./app",
      ],
      [
        "A dev server reachable from the host, with a token",
        "$0 workspace create debian:12 --network-policy egress+published-ports --secret-file API_TOKEN=./token.txt",
      ],
    ],
  });

  environment = Option.String({ name: "ENV", required: false });
  vcpuCount = Option.String("--vcpu-count", {
    validator: t.isNumber(),
    description: `Virtual CPUs (${LIMITS.vcpuCount.min}-${LIMITS.vcpuCount.max}, default ${DEFAULTS.vcpuCount})`,
  });
  memMib = Option.String("--mem-mib", {
    validator: t.isNumber(),
    description: `Memory in MiB (${LIMITS.memMib.min}-${LIMITS.memMib.max}, default ${DEFAULTS.memMib})`,
  });
  diskMib = Option.String("--disk-mib", {
    validator: t.isNumber(),
    description: `Disk in MiB for what the guest writes (${LIMITS.diskMib.min}-${LIMITS.diskMib.max}, default ${DEFAULTS.diskMib}); ENOSPC past it`,
  });
  ttlSeconds = Option.String("--ttl-seconds", {
    validator: t.isNumber(),
    description: `Idle seconds before the workspace expires; 0 = never (default ${DEFAULTS.ttlSeconds})`,
  });
  engine = Option.String("--engine", { description: "auto, gvisor, qemu or firecracker (default auto)" });
  seedPath = Option.String("--seed-path", {
    description: "Host directory or .tar/.tar.gz/.tgz to copy into /workspace",
  });
  name = Option.String("--name", { description: "A unique name to use instead of the id" });
  labels = Option.Array("--label", { description: "KEY=VALUE label (repeatable)" });
  networkPolicy = Option.String("--network-policy", {
    description: "off, egress, egress+published-ports or allowlist (default off)",
  });
  allowHosts = Option.Array("--allow-host", {
    description: "allowlist: HOST[:PORT] the guest may reach; *.example.com for subdomains (repeatable)",
  });
  denyHosts = Option.Array("--deny-host", {
    description: "allowlist: HOST[:PORT] refused even if allowed (repeatable)",
  });
  allowPresets = Option.Array("--allow-preset", {
    description: `allowlist: add a preset's rules: ${Object.keys(PRESETS).join(", ")} (repeatable)`,
  });
  caFiles = Option.Array("--ca-file", {
    description: "Host PEM file of CA certificates the guest trusts too (repeatable)",
  });
  hostCa = Option.Boolean("--host-ca", false, {
    description: "The guest also trusts the host's whole system CA bundle",
  });
  hostProxy = Option.Boolean("--host-proxy", false, {
    description: "Go out through the host's HTTPS_PROXY/HTTP_PROXY (NO_PROXY respected)",
  });
  secrets = Option.Array("--secret", { description: "NAME=VALUE secret (repeatable)" });
  secretFiles = Option.Array("--secret-file", { description: "NAME=PATH secret read from a host file (repeatable)" });
  secretHosts = Option.Array("--secret-host", {
    description: "allowlist: NAME=HOST[,HOST] sends secret NAME only to these hosts; the guest holds a placeholder",
  });
  idOnly = Option.Boolean("--id-only", false, { description: "Print only the new workspace's id" });

  protected async perform(out: Output): Promise<undefined> {
    const params = parseFlags(
      WorkspaceCreateParams,
      {
        environment: this.environment,
        vcpu_count: this.vcpuCount,
        mem_mib: this.memMib,
        disk_mib: this.diskMib,
        ttl_seconds: this.ttlSeconds,
        engine: this.engine,
        seed_path: this.seedPath,
        name: this.name,
        labels: keyValues("--label", this.labels),
        network_policy: this.networkPolicy,
        allow_hosts: this.allowHosts,
        deny_hosts: this.denyHosts,
        allow_presets: this.allowPresets,
        ca_files: this.caFiles,
        host_ca: this.hostCa,
        host_proxy: this.hostProxy,
        secrets: secretFlags(this.secrets, this.secretFiles, this.secretHosts),
      },
      {
        ...POSITIONALS,
        labels: "--label",
        secrets: "--secret",
        allow_hosts: "--allow-host",
        deny_hosts: "--deny-host",
        allow_presets: "--allow-preset",
        ca_files: "--ca-file",
      },
    );
    const info = await (await this.context.manager()).workspaces.create(params, { progress: out.progress() });
    if (this.idOnly) {
      out.result(info, { stdout: `${info.workspace_id}\n` });
      return undefined;
    }
    out.result(info, { stdout: describeWorkspace(info) });
    out.status({
      workspace_id: info.workspace_id,
      name: info.name ?? undefined,
      environment: info.environment,
      engine: info.engine,
      state: info.state,
      network: info.network_policy,
      seed: info.workspace_seed.mode,
      seed_entries: info.workspace_seed.entry_count,
    });
    return undefined;
  }
}
