// Owns where a host keeps the CA certificates it trusts: read to hand them to a guest (host_ca)
// and by the egress gateway to verify the hosts it sends bound credentials to.

/** The host bundles looked for, in order (Debian/Ubuntu, Fedora/RHEL, Alpine/Arch). */
export const HOST_CA_BUNDLES = [
  "/etc/ssl/certs/ca-certificates.crt",
  "/etc/pki/tls/certs/ca-bundle.crt",
  "/etc/ssl/cert.pem",
] as const;
