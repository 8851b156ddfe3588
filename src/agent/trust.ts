// Owns the guest's trust in extra CA certificates (a TLS-inspecting proxy's, a private registry's):
// they are added to the system bundle every TLS client on Debian reads, kept where
// update-ca-certificates finds them again, and the tools with trust stores of their own (Node,
// Python requests, pip) are pointed at the bundle through the environment of every later process.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { AgentHandlers } from "../channel/agent-ops.js";
import { AgentOp, type AgentTrustResult, BASE_ENV, GUEST_CA_BUNDLE } from "../channel/protocol.js";

/** Where the guest's own bundle is kept before pyro first extends it, so a restart starts from it. */
const ORIGINAL_BUNDLE = "/etc/ssl/certs/ca-certificates.pyro-original.crt";
/** update-ca-certificates adds what is here when it rebuilds the bundle (an apt upgrade does). */
const LOCAL_CA = "/usr/local/share/ca-certificates/pyro-extra.crt";

let trustEnv: Record<string, string> = {};

/** The environment of a process the agent starts: the base, the trust variables, then the caller's. */
export function processEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { ...BASE_ENV, ...trustEnv, ...extra };
}

function trust(pem: string): AgentTrustResult {
  const certificates = pem.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
  mkdirSync(dirname(GUEST_CA_BUNDLE), { recursive: true });
  if (!existsSync(ORIGINAL_BUNDLE)) {
    writeFileSync(ORIGINAL_BUNDLE, existsSync(GUEST_CA_BUNDLE) ? readFileSync(GUEST_CA_BUNDLE) : "");
  }
  const original = readFileSync(ORIGINAL_BUNDLE, "utf8");
  const separator = original.length === 0 || original.endsWith("\n") ? "" : "\n";
  writeFileSync(GUEST_CA_BUNDLE, `${original}${separator}${pem.endsWith("\n") ? pem : `${pem}\n`}`);
  mkdirSync(dirname(LOCAL_CA), { recursive: true });
  writeFileSync(LOCAL_CA, pem);
  trustEnv = {
    NODE_EXTRA_CA_CERTS: GUEST_CA_BUNDLE,
    REQUESTS_CA_BUNDLE: GUEST_CA_BUNDLE,
    PIP_CERT: GUEST_CA_BUNDLE,
    SSL_CERT_FILE: GUEST_CA_BUNDLE,
  };
  return { certificates, bundle: GUEST_CA_BUNDLE };
}

export function trustHandlers(): AgentHandlers {
  return {
    [AgentOp.TRUST]: async (p) => trust(p.pem),
  };
}
