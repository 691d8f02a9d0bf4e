# provsec's serving certificate: issue from the pki_int engine's "provsec" role, for the service's
# own names only and for at most a day. Bound to the same Kubernetes auth role "provsec" (setup.sh
# attaches it beside provsec-policy), used only by the Vault Agent's pkiCert template.
# The role itself (docs/deploy.md, "TLS") also caps max_ttl and the allowed names; the policy
# repeats both so that neither a changed role nor a changed template can widen them alone.
path "pki_int/issue/provsec" {
  capabilities = ["create", "update"]
  allowed_parameters = {
    "common_name" = ["provsec.provsec.svc"]
    "alt_names"   = ["provsec.provsec.svc.cluster.local"]
    "ttl"         = ["24h"]
  }
}
