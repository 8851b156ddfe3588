// Owns what a workspace keeps secret: secret values (in a 0600 file of their own, read once per
// process), the redactor made of them that every output passes through, the environment a guest
// process gets (placeholders for secrets bound to hosts), and the host's proxy settings.
import { readFile, writeFile } from "node:fs/promises";
import { PyroError } from "../contract/errors.js";
import type { SecretInput } from "../contract/workspace.js";
import type { CredentialConfig } from "../egress/credentials.js";
import { type HostProxy, proxyEnvironment } from "../egress/host-proxy.js";
import type { RecordStore, WorkspacePaths, WorkspaceRecord } from "./records.js";
import { Redactor } from "./redact.js";

export class WorkspaceSecrets {
  /** Read once per workspace: secrets are fixed at create. */
  private readonly cache = new Map<string, { values: Record<string, string>; redactor: Redactor }>();

  constructor(private readonly records: RecordStore) {}

  /** Values go to a file of their own, created 0600 before anything is written into it. */
  async save(id: string, values: Map<string, string>): Promise<void> {
    await writeFile(this.records.paths(id).secrets, JSON.stringify(Object.fromEntries(values)), {
      mode: 0o600,
      flag: "wx",
    });
  }

  async load(record: WorkspaceRecord): Promise<{ values: Record<string, string>; redactor: Redactor }> {
    const cached = this.cache.get(record.workspace_id);
    if (cached) return cached;
    let values: Record<string, string> = {};
    if (record.secrets?.length) {
      try {
        values = JSON.parse(await readFile(this.records.paths(record.workspace_id).secrets, "utf8")) as Record<
          string,
          string
        >;
      } catch {
        throw new PyroError(
          "INTERNAL",
          `the secrets file of workspace ${record.workspace_id} is missing or unreadable; recreate the workspace with its secrets`,
        );
      }
    }
    const loaded = { values, redactor: new Redactor(Object.values(values)) };
    this.cache.set(record.workspace_id, loaded);
    return loaded;
  }

  /** Every value crossing back to a caller from this workspace goes through its redactor. */
  async redactor(record: WorkspaceRecord): Promise<Redactor> {
    return (await this.load(record)).redactor;
  }

  /** Runs fn, then redacts every string of its result (names and paths too) or of its error. */
  async redactingAll<T>(record: WorkspaceRecord, fn: () => Promise<T>): Promise<T> {
    const redactor = await this.redactor(record);
    return redactor.redactDeep(await this.redacting(redactor, fn));
  }

  /** Runs fn and redacts the message of any error it throws. */
  async redacting<T>(redactor: Redactor, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw redactor.redactError(err);
    }
  }

  /** The host's proxy settings a workspace keeps (host_proxy), whole; undefined without them. */
  async hostProxy(record: WorkspaceRecord): Promise<HostProxy | undefined> {
    if (!record.host_proxy) return undefined;
    const path = this.records.paths(record.workspace_id).hostProxy;
    try {
      return JSON.parse(await readFile(path, "utf8")) as HostProxy;
    } catch (err) {
      throw new PyroError(
        "INTERNAL",
        `workspace ${record.workspace_id} uses the host's proxy but ${path} cannot be read (${(err as Error).message}); recreate the workspace with host_proxy`,
      );
    }
  }

  /** The environment to hand a guest process: the host's proxy variables under the egress
   * policies (host_proxy), then secret_env (secret name -> variable name). */
  async environment(record: WorkspaceRecord, mapping: Record<string, string>): Promise<Record<string, string>> {
    const proxy = record.network_policy === "allowlist" ? undefined : await this.hostProxy(record);
    const env: Record<string, string> = proxy ? proxyEnvironment(proxy) : {};
    const names = Object.keys(mapping);
    if (names.length === 0) return env;
    const { values } = await this.load(record);
    for (const name of names) {
      const value = values[name];
      if (value === undefined) {
        const known = record.secrets?.map((s) => s.name).join(", ") || "none";
        throw new PyroError(
          "SECRET_NOT_FOUND",
          `workspace ${record.workspace_id} has no secret named ${name} (it has: ${known}); secrets are given at create with --secret or --secret-file`,
        );
      }
      // A secret bound to hosts never enters the guest: the process gets its placeholder.
      const placeholder = record.secrets?.find((s) => s.name === name)?.placeholder;
      env[mapping[name]!] = placeholder ?? value;
    }
    return env;
  }
}

/** Secret values from their inputs: literals as given, files read as UTF-8 text. */
export async function loadSecrets(inputs: SecretInput[]): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  for (const input of inputs) {
    if (values.has(input.name)) {
      throw new PyroError("INVALID_ARGUMENT", `secret ${input.name} is given twice; give each secret once`);
    }
    let value = input.value;
    if (input.file_path !== undefined) {
      const bytes = await readFile(input.file_path).catch((err: NodeJS.ErrnoException) => {
        throw new PyroError(
          "INVALID_ARGUMENT",
          `cannot read the file of secret ${input.name} (${input.file_path}): ${err.code ?? err.message}`,
        );
      });
      value = bytes.toString("utf8");
      if (!Buffer.from(value, "utf8").equals(bytes)) {
        throw new PyroError("INVALID_ARGUMENT", `the file of secret ${input.name} is not UTF-8 text`);
      }
      // A trailing newline is how files end, not part of the secret.
      value = value.replace(/\r?\n$/, "");
    }
    if (!value) throw new PyroError("INVALID_ARGUMENT", `secret ${input.name} is empty; give it a value`);
    values.set(input.name, value);
  }
  return values;
}

/** The gateway's view of a workspace's bound secrets: which host gets which, and the CA to sign with. */
export function boundCredentials(record: WorkspaceRecord, paths: WorkspacePaths): CredentialConfig | undefined {
  const hosts: CredentialConfig["hosts"] = {};
  for (const secret of record.secrets ?? []) {
    if (!secret.hosts || !secret.placeholder) continue;
    for (const host of secret.hosts) {
      hosts[host] = [...(hosts[host] ?? []), { name: secret.name, placeholder: secret.placeholder }];
    }
  }
  if (Object.keys(hosts).length === 0) return undefined;
  return { secretsFile: paths.secrets, caCert: paths.egressCaCert, caKey: paths.egressCaKey, hosts };
}
