#!/usr/bin/env bash
# The Vault side of a provsec deployment (docs/deploy.md walks through it).
#
#   vault/setup.sh policy            write the provsec read policy, the KEK admin policy and the PKI issue policy
#   vault/setup.sh role              create or update the Kubernetes auth role "provsec"
#   vault/setup.sh pki-role          create or update the PKI role that issues provsec's serving certificate
#   vault/setup.sh create-kek        write the first KEK version (refuses if one exists)
#   vault/setup.sh rotate-kek        write a new KEK version; older versions stay readable
#   vault/setup.sh retire-kek N      soft-delete version N once nothing is wrapped under it
#   vault/setup.sh destroy-kek N     destroy version N for good (no undelete)
#   vault/setup.sh status            show the KEK's versions (metadata only, never a key)
#   vault/setup.sh check-mount       refuse a KV mount whose delete_version_after would delete every KEK version
#   vault/setup.sh all               policy, role, create-kek
#
# The vault CLI reads VAULT_ADDR, VAULT_TOKEN and VAULT_NAMESPACE itself; for the ADR's Vault
# Enterprise namespace run with VAULT_NAMESPACE=ns_dev/ns_wcm_infra/ac_access_control.
# A key never appears on a command line, in this script's output or in a file: it goes from
# openssl to `vault kv put` through a pipe.
set -euo pipefail

# The KEK's place is fixed by the ADR, and the policy file and the agent annotations name it too.
readonly KV_MOUNT=kv-dev
readonly KV_PATH=provisioning_secret_enc_key
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR

: "${K8S_AUTH_MOUNT:=kubernetes}"        # Vault's Kubernetes auth mount
: "${K8S_NAMESPACE:=provsec}"            # the namespace provsec runs in
: "${K8S_SERVICE_ACCOUNT:=provsec}"      # the service account its pods run as
: "${VAULT_ROLE:=provsec}"               # the role the agent annotation names
: "${VAULT_POLICY:=provsec}"
: "${VAULT_ADMIN_POLICY:=provsec-kek-admin}"
: "${VAULT_PKI_POLICY:=provsec-pki}"
: "${PKI_MOUNT:=pki_int}"                # an intermediate CA mount; provsec-pki-policy.hcl names it
: "${TOKEN_AUDIENCE:=vault}"             # the projected token's audience in the pod spec
: "${TOKEN_TTL:=1h}"
: "${TOKEN_MAX_TTL:=4h}"
: "${KEK_MAX_VERSIONS:=20}"              # keep well above the rotations a rewrap may lag behind
: "${KEK_GENERATOR:=adr}"                # adr: the ADR's openssl command, random passphrase; rand: openssl rand

die() {
  printf 'setup.sh: %s\n' "$*" >&2
  exit 1
}

write_policies() {
  vault policy write "$VAULT_POLICY" "$SCRIPT_DIR/provsec-policy.hcl"
  vault policy write "$VAULT_ADMIN_POLICY" "$SCRIPT_DIR/provsec-kek-admin-policy.hcl"
  vault policy write "$VAULT_PKI_POLICY" "$SCRIPT_DIR/provsec-pki-policy.hcl"
}

write_role() {
  # Only the provsec service account in its namespace, presenting a token minted for Vault (the
  # pod's projected "vault" audience token), gets the read policy, for an hour at a time.
  vault write "auth/$K8S_AUTH_MOUNT/role/$VAULT_ROLE" \
    bound_service_account_names="$K8S_SERVICE_ACCOUNT" \
    bound_service_account_namespaces="$K8S_NAMESPACE" \
    audience="$TOKEN_AUDIENCE" \
    token_policies="$VAULT_POLICY,$VAULT_PKI_POLICY" \
    token_ttl="$TOKEN_TTL" \
    token_max_ttl="$TOKEN_MAX_TTL"
}

write_pki_role() {
  # Server certificates for the service's own names only, one day at most, P-256 keys. Not stored
  # in Vault (no_store): at this lifetime expiry, not revocation, is what ends a certificate.
  vault write "$PKI_MOUNT/roles/provsec" \
    allowed_domains="provsec.$K8S_NAMESPACE.svc,provsec.$K8S_NAMESPACE.svc.cluster.local" \
    allow_bare_domains=true \
    allow_subdomains=false \
    allow_glob_domains=false \
    allow_ip_sans=false \
    server_flag=true \
    client_flag=false \
    key_type=ec \
    key_bits=256 \
    ttl=24h \
    max_ttl=24h \
    no_store=true
}

# Prints a new KEK as 64 hex digits (no newline).
#
# The ADR's command is `openssl enc -aes-256-cbc -k secret -P -md sha1`: it prints a key derived
# from the passphrase and a random 8-byte salt. With the literal passphrase "secret" that key is
# only as hard to find as the salt, 2^64 guesses, each checkable offline against any stored
# envelope. So the passphrase here is 32 random bytes, handed over on a file descriptor rather than
# the command line; the output keeps the ADR's format (the key= line, 64 upper-case hex digits).
generate_kek_hex() {
  local kek_hex
  case "$KEK_GENERATOR" in
    adr) kek_hex="$(openssl enc -aes-256-cbc -pass fd:3 -P -md sha1 3< <(openssl rand -hex 32) | sed -n 's/^key=//p')" ;;
    rand) kek_hex="$(openssl rand -hex 32)" ;;
    *) die "KEK_GENERATOR must be adr or rand" ;;
  esac
  [[ "$kek_hex" =~ ^[0-9A-Fa-f]{64}$ ]] || die "openssl did not produce a 64-hex-digit key"
  printf '%s' "$kek_hex"
}

# delete_version_after on the mount gives every version a deletion time as it is written: the agent
# template lists only versions without one, renders "keys": null, and no new pod becomes ready.
check_kv_mount() {
  local after
  if ! after="$(vault read -field=delete_version_after "$KV_MOUNT/config")"; then
    printf 'setup.sh: warning: could not read %s/config; check its delete_version_after yourself (it must be 0s)\n' "$KV_MOUNT" >&2
    return 0
  fi
  case "$after" in
    "" | 0 | 0s) return 0 ;;
    *) die "$KV_MOUNT has delete_version_after=$after: Vault marks every KEK version deleted $after after it is written, the agent renders \"keys\": null and new pods never become ready. Set it to 0s: vault write $KV_MOUNT/config delete_version_after=0s" ;;
  esac
}

current_kek_version() {
  vault kv metadata get -mount="$KV_MOUNT" -field=current_version "$KV_PATH"
}

# $1: the check-and-set version (0 = only if the secret does not exist yet).
put_kek() {
  local cas="$1" kek_hex
  # Generated first, so a failed openssl can never let an empty value reach `vault kv put`.
  # (Callers use `put_kek || die`, which switches errexit off in here: check by hand.)
  kek_hex="$(generate_kek_hex)" || return 1
  [[ ${#kek_hex} -eq 64 ]] || return 1
  # `key=-` makes the CLI read the value from stdin; printf is a shell builtin, so the key is
  # never an argument of any process.
  printf '%s' "$kek_hex" | vault kv put -mount="$KV_MOUNT" -cas="$cas" "$KV_PATH" key=- >/dev/null
}

create_kek() {
  check_kv_mount
  put_kek 0 || die "could not create the KEK (see above; if $KV_MOUNT/$KV_PATH exists already, use rotate-kek)"
  # Versions beyond max_versions are purged for good; rows still wrapped under one would be lost.
  vault kv metadata put -mount="$KV_MOUNT" -max-versions="$KEK_MAX_VERSIONS" "$KV_PATH"
  printf 'created KEK version %s at %s/%s\n' "$(current_kek_version)" "$KV_MOUNT" "$KV_PATH"
}

rotate_kek() {
  local current
  current="$(current_kek_version)"
  [[ "$current" =~ ^[1-9][0-9]*$ ]] || die "no KEK to rotate at $KV_MOUNT/$KV_PATH (use create-kek)"
  check_kv_mount
  # Check-and-set: two rotations started together cannot both win.
  put_kek "$current" || die "could not write a new KEK version (see above; did someone else rotate first?)"
  printf 'rotated KEK: version %s is current, %s stays readable until retired\n' "$(current_kek_version)" "$current"
}

# $1: delete (reversible) or destroy (permanent); $2: the version.
remove_kek_version() {
  local action="$1" version="${2:-}"
  [[ "$version" =~ ^[1-9][0-9]*$ ]] || die "$action-kek needs a version number"
  # The current version encrypts every new row; removing it would stop the service from storing.
  [[ "$version" != "$(current_kek_version)" ]] || die "version $version is the current KEK; rotate first"
  vault kv "$action" -mount="$KV_MOUNT" -versions="$version" "$KV_PATH"
}

show_status() {
  vault kv metadata get -mount="$KV_MOUNT" "$KV_PATH"
  check_kv_mount
}

main() {
  [[ $# -gt 0 ]] || die "usage: $0 policy|role|pki-role|create-kek|rotate-kek|retire-kek N|destroy-kek N|status|check-mount|all"
  command -v vault >/dev/null || die "the vault CLI is not on PATH"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      policy) write_policies ;;
      role) write_role ;;
      pki-role) write_pki_role ;;
      create-kek) create_kek ;;
      rotate-kek) rotate_kek ;;
      retire-kek) remove_kek_version delete "${2:-}"; shift ;;
      destroy-kek) remove_kek_version destroy "${2:-}"; shift ;;
      status) show_status ;;
      check-mount) check_kv_mount ;;
      all) write_policies; write_role; create_kek ;;
      *) die "unknown step: $1" ;;
    esac
    shift
  done
}

main "$@"
