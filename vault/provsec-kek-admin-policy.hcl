# For the people (or pipeline) who create, rotate and retire the KEK; never given to a pod.
# Create and rotate write new versions; nothing here can read a key back out.

path "kv-dev/data/provisioning_secret_enc_key" {
  capabilities = ["create", "update"]
}

# Version list, and settings such as max_versions.
path "kv-dev/metadata/provisioning_secret_enc_key" {
  capabilities = ["read", "create", "update"]
}

# Retire a version after rewrap (soft delete, reversible with undelete) ...
path "kv-dev/delete/provisioning_secret_enc_key" {
  capabilities = ["update"]
}
path "kv-dev/undelete/provisioning_secret_enc_key" {
  capabilities = ["update"]
}

# ... and destroy it for good once no backup or row can still need it.
path "kv-dev/destroy/provisioning_secret_enc_key" {
  capabilities = ["update"]
}
