# provsec: read the KEK and nothing else. Bound to the Kubernetes auth role "provsec" (setup.sh),
# used by the Vault Agent sidecar in the provsec pods (and by KEY_SOURCE=vault, if chosen).

# Any version of the KEK: KV v2 reads a version with ?version=N on this same path.
path "kv-dev/data/provisioning_secret_enc_key" {
  capabilities = ["read"]
}

# The KEK's version list (current version, which versions are deleted or destroyed). Metadata holds
# no key material; the agent template and the vault key source choose versions from it.
path "kv-dev/metadata/provisioning_secret_enc_key" {
  capabilities = ["read"]
}
