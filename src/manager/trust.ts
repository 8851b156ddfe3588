// Owns the CA certificates a workspace's guest trusts besides its own bundle: files the caller
// names and, on request, the host's whole system bundle (the way to work behind a TLS-inspecting
// proxy whose CA the host trusts). Each certificate is parsed before anything is kept, so a wrong
// file is an error at create, not a TLS failure later inside the guest.
import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { PyroError } from "../contract/errors.js";
import { HOST_CA_BUNDLES } from "../util/ca-bundles.js";

export { HOST_CA_BUNDLES };
/** What a workspace may add to its guest's trust store. */
export const MAX_TRUST_BYTES = 4 * 1024 * 1024;
export const MAX_TRUST_CERTIFICATES = 2_000;

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

export interface Trust {
  pem: string;
  certificates: number;
  sources: string[];
}

function invalid(message: string): PyroError {
  return new PyroError("INVALID_ARGUMENT", message);
}

async function hostBundle(): Promise<string> {
  const override = process.env.SSL_CERT_FILE;
  for (const path of override ? [override, ...HOST_CA_BUNDLES] : HOST_CA_BUNDLES) {
    if (
      await readFile(path).then(
        () => true,
        () => false,
      )
    )
      return path;
  }
  throw new PyroError(
    "HOST_REQUIREMENT_MISSING",
    `host_ca found no CA bundle on this host (looked for ${HOST_CA_BUNDLES.join(", ")}); install ca-certificates or name the file with ca_files`,
  );
}

/** Reads and checks every certificate; undefined when the workspace trusts nothing extra. */
export async function loadTrust(params: { ca_files: string[]; host_ca: boolean }): Promise<Trust | undefined> {
  const sources = [...(params.host_ca ? [await hostBundle()] : []), ...params.ca_files];
  if (sources.length === 0) return undefined;
  const blocks: string[] = [];
  let bytes = 0;
  for (const source of sources) {
    let text: string;
    try {
      text = await readFile(source, "utf8");
    } catch (err) {
      throw invalid(
        `ca file ${source} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
    const found = text.match(PEM_BLOCK) ?? [];
    if (found.length === 0) throw invalid(`ca file ${source} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    for (const [index, block] of found.entries()) {
      try {
        new X509Certificate(block);
      } catch (err) {
        throw invalid(`certificate ${index + 1} in ca file ${source} is not valid: ${(err as Error).message}`);
      }
      bytes += block.length + 1;
      blocks.push(block);
    }
    if (bytes > MAX_TRUST_BYTES || blocks.length > MAX_TRUST_CERTIFICATES) {
      throw invalid(
        `the CA certificates given hold more than ${MAX_TRUST_BYTES / 1024 / 1024} MiB or ${MAX_TRUST_CERTIFICATES} certificates; name fewer`,
      );
    }
  }
  return { pem: `${blocks.join("\n")}\n`, certificates: blocks.length, sources };
}
