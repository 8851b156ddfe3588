// Owns a workspace's allowlist rules as the manager sees them: what create records (presets
// expanded into plain rules), what an update makes of them, and the dry run that says what the
// gateway would decide for a URL. Enforcement is the supervisor's egress gateway (src/egress).

import { checkRules, expandPresets, normalizeName, Policy, targetOf } from "../contract/egress-rules.js";
import { PyroError } from "../contract/errors.js";
import type { NetworkPolicy, NetworkRules, PolicyCheckResult } from "../contract/workspace.js";

interface RuleInput {
  allow_hosts: string[];
  deny_hosts: string[];
  allow_presets: string[];
}

function givesRules(input: RuleInput): boolean {
  return input.allow_hosts.length + input.deny_hosts.length + input.allow_presets.length > 0;
}

/** The rules a new workspace records: null unless its policy is allowlist. */
export function rulesAtCreate(policy: NetworkPolicy, input: RuleInput): NetworkRules | null {
  if (policy !== "allowlist") {
    if (givesRules(input)) {
      throw new PyroError(
        "INVALID_ARGUMENT",
        `allow and deny rules apply to network policy allowlist, not ${policy}; add --network-policy allowlist`,
      );
    }
    return null;
  }
  return {
    allow: checkRules([...expandPresets(input.allow_presets), ...input.allow_hosts], "allow"),
    deny: checkRules(input.deny_hosts, "deny"),
  };
}

/** The rules after an update, or undefined when the update does not touch them. */
export function rulesAfterUpdate(
  workspaceId: string,
  policy: NetworkPolicy,
  current: NetworkRules | undefined,
  input: RuleInput & { remove_hosts: string[] },
): NetworkRules | undefined {
  if (!givesRules(input) && input.remove_hosts.length === 0) return undefined;
  if (policy !== "allowlist" || !current) {
    throw new PyroError(
      "NETWORK_POLICY_DENIED",
      `workspace ${workspaceId} has network policy ${policy}, which has no rules to change; create one with --network-policy allowlist`,
    );
  }
  const unknown = input.remove_hosts.filter((r) => !current.allow.includes(r) && !current.deny.includes(r));
  if (unknown.length > 0) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `no rule ${unknown.map((r) => JSON.stringify(r)).join(", ")} to remove; the rules are allow [${current.allow.join(", ")}] and deny [${current.deny.join(", ")}]`,
    );
  }
  const keep = (list: string[]) => list.filter((r) => !input.remove_hosts.includes(r));
  return {
    allow: checkRules([...keep(current.allow), ...expandPresets(input.allow_presets), ...input.allow_hosts], "allow"),
    deny: checkRules([...keep(current.deny), ...input.deny_hosts], "deny"),
  };
}

export function checkPolicy(
  workspaceId: string,
  policy: NetworkPolicy,
  rules: NetworkRules | undefined,
  url: string,
): PolicyCheckResult {
  const { name, port } = targetOf(url);
  const base = { workspace_id: workspaceId, network_policy: policy, name, port };
  switch (policy) {
    case "off":
      return { ...base, allowed: false, rule: null, reason: "network policy off: the sandbox has loopback only" };
    case "egress":
    case "egress+published-ports":
      return { ...base, allowed: true, rule: null, reason: `network policy ${policy} lets every destination through` };
    case "allowlist": {
      const decision = new Policy(rules ?? { allow: [], deny: [] }).check(name, port);
      return { ...base, allowed: decision.allowed, rule: decision.rule ?? null, reason: decision.reason };
    }
  }
}

/** The secrets bound to hosts, checked: allowlist only, and each host allowed on 443 by the rules. */
export function boundSecrets(
  policy: NetworkPolicy,
  rules: NetworkRules | null,
  secrets: ReadonlyArray<{ name: string; hosts?: string[] | undefined }>,
): Array<{ name: string; hosts: string[] }> {
  const bound = secrets.filter((s) => s.hosts !== undefined && s.hosts.length > 0);
  if (bound.length === 0) return [];
  if (policy !== "allowlist" || !rules) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `secret ${bound[0]!.name} is bound to hosts, which needs network policy allowlist (pyro's gateway adds it); add --network-policy allowlist`,
    );
  }
  const compiled = new Policy(rules);
  return bound.map((secret) => ({
    name: secret.name,
    hosts: [
      ...new Set(
        secret.hosts!.map((raw) => {
          const host = normalizeName(raw);
          if (!host)
            throw new PyroError(
              "INVALID_ARGUMENT",
              `secret ${secret.name} is bound to ${JSON.stringify(raw)}, which is not a host name`,
            );
          if (!compiled.check(host, 443).allowed) {
            throw new PyroError(
              "INVALID_ARGUMENT",
              `secret ${secret.name} is bound to ${host}, which the allowlist does not allow on port 443; add --allow-host ${host}`,
            );
          }
          return host;
        }),
      ),
    ],
  }));
}
