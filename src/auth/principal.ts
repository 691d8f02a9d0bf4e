/** Who is calling: the verified identity a bearer token proves. */
export interface Principal {
  /** The token's `iss`, equal to one of the configured trusted issuers. */
  readonly issuer: string;
  /** The token's `sub`, e.g. `system:serviceaccount:provisioning:cert-worker`. */
  readonly subject: string;
  /** The token's `exp`: the principal must not be trusted after this instant. */
  readonly expiresAt: Date;
}
