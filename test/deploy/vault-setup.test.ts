/**
 * The Vault side: the policies grant exactly what they say, and vault/setup.sh issues the right
 * vault commands. The script runs for real against a stand-in `vault` executable (first on PATH)
 * that records each call's arguments and standard input and emulates KV v2 check-and-set; it makes
 * real keys with the machine's openssl.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './support/manifests';
import { toolAvailable } from '../support/external-tools';

const SETUP = join(REPO_ROOT, 'vault', 'setup.sh');
const KEK_PATH = 'provisioning_secret_enc_key';

/** `path "X" { capabilities = [...] }` blocks of an HCL policy, as { path: capabilities }. */
function policyGrants(file: string): Record<string, string[]> {
  const text = readFileSync(join(REPO_ROOT, 'vault', file), 'utf8').replace(/^\s*#.*$/gm, '');
  const grants: Record<string, string[]> = {};
  for (const match of text.matchAll(/path\s+"([^"]+)"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]\s*\}/g)) {
    grants[match[1]!] = [...match[2]!.matchAll(/"([^"]+)"/g)].map((capability) => capability[1]!);
  }
  const blocks = (text.match(/\bpath\s+"/g) ?? []).length;
  if (blocks !== Object.keys(grants).length) throw new Error(`${file}: a path block this parser does not understand`);
  return grants;
}

describe('the Vault policies', () => {
  test('provsec may read the KEK and its version list, exactly those two paths and nothing else', () => {
    expect(policyGrants('provsec-policy.hcl')).toEqual({
      'kv-dev/data/provisioning_secret_enc_key': ['read'],
      'kv-dev/metadata/provisioning_secret_enc_key': ['read'],
    });
  });

  test('the admin policy writes, retires and destroys versions but can never read a key back', () => {
    const grants = policyGrants('provsec-kek-admin-policy.hcl');
    expect(grants['kv-dev/data/provisioning_secret_enc_key']).toEqual(['create', 'update']);
    expect(Object.keys(grants).every((path) => path.endsWith(`/${KEK_PATH}`))).toBe(true);
    expect(Object.keys(grants).some((path) => /[*+]/.test(path))).toBe(false);
  });
});

/** A stand-in for the vault CLI: logs "arg\x1farg..." per call, keeps the stdin of `kv put`. */
const FAKE_VAULT = `#!/usr/bin/env bash
set -euo pipefail
calls="$FAKE_VAULT_DIR/calls"
printf '%s\\x1f' "$@" >> "$calls"; printf '\\n' >> "$calls"
current="$(cat "$FAKE_VAULT_DIR/current" 2>/dev/null || echo 0)"
case "$1 $2" in
  "kv put")
    cas=""; for arg in "$@"; do case "$arg" in -cas=*) cas="\${arg#-cas=}";; esac; done
    if [[ -n "$cas" && "$cas" != "$current" ]]; then echo "check-and-set parameter did not match the current version" >&2; exit 2; fi
    cat > "$FAKE_VAULT_DIR/put.$((current + 1))"
    echo $((current + 1)) > "$FAKE_VAULT_DIR/current";;
  "kv metadata") [[ "$3" == get ]] && echo "$current";;
  "read -field=delete_version_after") cat "$FAKE_VAULT_DIR/delete_version_after" 2>/dev/null || echo 0s;;
esac
exit 0
`;

describe('vault/setup.sh', () => {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'provsec-vault-setup-'));
    writeFileSync(join(dir, 'vault'), FAKE_VAULT);
    chmodSync(join(dir, 'vault'), 0o755);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function setup(
    args: string[],
    extraEnv: Record<string, string> = {},
  ): { status: number | null; output: string; calls: string[][] } {
    const result = spawnSync('bash', [SETUP, ...args], {
      encoding: 'utf8',
      input: '',
      env: { PATH: `${dir}:${process.env.PATH ?? ''}`, HOME: dir, FAKE_VAULT_DIR: dir, ...extraEnv },
    });
    const callsFile = join(dir, 'calls');
    const calls = existsSync(callsFile)
      ? readFileSync(callsFile, 'utf8')
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => line.split('\x1f').slice(0, -1))
      : [];
    return { status: result.status, output: result.stdout + result.stderr, calls };
  }
  const storedKeys = (): string[] =>
    readdirSync(dir)
      .filter((name) => name.startsWith('put.'))
      .sort()
      .map((name) => readFileSync(join(dir, name), 'utf8'));
  const opensslAvailable = toolAvailable('openssl', 'vault-setup: the key-creation cases');
  const withOpenssl = opensslAvailable ? test : test.skip;

  test('is valid bash', () => {
    expect(spawnSync('bash', ['-n', SETUP]).status).toBe(0);
  });

  test('writes both policies and the Kubernetes auth role bound to the provsec service account, namespace and Vault audience', () => {
    const { status, calls } = setup(['policy', 'role']);

    expect(status).toBe(0);
    expect(calls).toEqual([
      ['policy', 'write', 'provsec', join(REPO_ROOT, 'vault', 'provsec-policy.hcl')],
      ['policy', 'write', 'provsec-kek-admin', join(REPO_ROOT, 'vault', 'provsec-kek-admin-policy.hcl')],
      ['policy', 'write', 'provsec-pki', join(REPO_ROOT, 'vault', 'provsec-pki-policy.hcl')],
      [
        'write',
        'auth/kubernetes/role/provsec',
        'bound_service_account_names=provsec',
        'bound_service_account_namespaces=provsec',
        'audience=vault',
        'token_policies=provsec,provsec-pki',
        'token_ttl=1h',
        'token_max_ttl=4h',
      ],
    ]);
  });

  test('pki-role issues server certificates for the service names only, for a day at most', () => {
    const { status, calls } = setup(['pki-role']);

    expect(status).toBe(0);
    expect(calls).toEqual([
      [
        'write',
        'pki_int/roles/provsec',
        'allowed_domains=provsec.provsec.svc,provsec.provsec.svc.cluster.local',
        'allow_bare_domains=true',
        'allow_subdomains=false',
        'allow_glob_domains=false',
        'allow_ip_sans=false',
        'server_flag=true',
        'client_flag=false',
        'key_type=ec',
        'key_bits=256',
        'ttl=24h',
        'max_ttl=24h',
        'no_store=true',
      ],
    ]);
  });

  withOpenssl(
    "create-kek writes a 64-hex-digit key in the ADR's upper-case form through stdin, never in an argument or the output",
    () => {
      const { status, calls, output } = setup(['create-kek']);

      expect(status).toBe(0);
      const [key] = storedKeys();
      expect(key).toMatch(/^[0-9A-F]{64}$/);
      expect(calls[0]).toEqual(['read', '-field=delete_version_after', 'kv-dev/config']);
      expect(calls[1]).toEqual(['kv', 'put', '-mount=kv-dev', '-cas=0', KEK_PATH, 'key=-']);
      expect(calls).toContainEqual(['kv', 'metadata', 'put', '-mount=kv-dev', '-max-versions=20', KEK_PATH]);
      expect(JSON.stringify(calls)).not.toContain(key);
      expect(output).not.toContain(key);
      expect(output.toLowerCase()).not.toContain(key!.toLowerCase());
      expect(output).toContain('created KEK version 1');
    },
  );

  withOpenssl('create-kek refuses to overwrite an existing KEK (check-and-set 0) and says to rotate', () => {
    setup(['create-kek']);
    const second = setup(['create-kek']);

    expect(second.status).not.toBe(0);
    expect(second.output).toContain('use rotate-kek');
    expect(storedKeys()).toHaveLength(1);
  });

  withOpenssl('rotate-kek writes a different key as the next version, with check-and-set on the current one', () => {
    setup(['create-kek']);
    const { status, calls, output } = setup(['rotate-kek']);

    expect(status).toBe(0);
    expect(calls).toContainEqual(['kv', 'put', '-mount=kv-dev', '-cas=1', KEK_PATH, 'key=-']);
    const [first, second] = storedKeys();
    expect(second).toMatch(/^[0-9A-F]{64}$/);
    expect(second).not.toBe(first);
    expect(output).toContain('version 2 is current, 1 stays readable');
  });

  withOpenssl('KEK_GENERATOR=rand uses openssl rand and gives 64 hex digits', () => {
    expect(setup(['create-kek'], { KEK_GENERATOR: 'rand' }).status).toBe(0);
    expect(storedKeys()[0]).toMatch(/^[0-9a-f]{64}$/);
  });

  test('a failing openssl writes nothing to Vault, not even an empty key', () => {
    writeFileSync(join(dir, 'openssl'), '#!/usr/bin/env bash\nexit 1\n');
    chmodSync(join(dir, 'openssl'), 0o755);

    const { status, calls } = setup(['create-kek']);

    expect(status).not.toBe(0);
    expect(calls.filter((call) => call[0] === 'kv' && call[1] === 'put')).toEqual([]);
  });

  withOpenssl('retire-kek soft-deletes an old version and refuses the current one', () => {
    setup(['create-kek']);
    setup(['rotate-kek']);

    const retired = setup(['retire-kek', '1']);
    const refused = setup(['retire-kek', '2']);

    expect(retired.status).toBe(0);
    expect(retired.calls).toContainEqual(['kv', 'delete', '-mount=kv-dev', '-versions=1', KEK_PATH]);
    expect(refused.status).not.toBe(0);
    expect(refused.output).toContain('version 2 is the current KEK');
    // The call log spans both runs: still only the one delete, of version 1.
    expect(refused.calls.filter((call) => call[1] === 'delete')).toEqual([
      ['kv', 'delete', '-mount=kv-dev', '-versions=1', KEK_PATH],
    ]);
  });

  test('refuses to create or rotate a KEK on a mount with delete_version_after, and status and check-mount say why', () => {
    writeFileSync(join(dir, 'delete_version_after'), '720h0m0s\n');

    const created = setup(['create-kek']);
    const checked = setup(['check-mount']);

    expect(created.status).not.toBe(0);
    expect(created.output).toContain(
      'kv-dev has delete_version_after=720h0m0s: Vault marks every KEK version deleted 720h0m0s after it is written',
    );
    expect(created.output).toContain('vault write kv-dev/config delete_version_after=0s');
    expect(checked.status).not.toBe(0);
    expect(checked.output).toContain('"keys": null');
    expect(checked.calls.filter((call) => call[0] === 'kv' && call[1] === 'put')).toEqual([]);
    writeFileSync(join(dir, 'current'), '1\n');
    expect(setup(['rotate-kek']).status).not.toBe(0);
    expect(setup(['status']).output).toContain('delete_version_after=720h0m0s');
  });

  test('check-mount accepts a mount without delete_version_after (0s)', () => {
    const { status, calls } = setup(['check-mount']);
    expect(status).toBe(0);
    expect(calls).toEqual([['read', '-field=delete_version_after', 'kv-dev/config']]);
  });

  test('an unknown step or a missing version number is an error', () => {
    expect(setup(['frobnicate']).status).not.toBe(0);
    expect(setup(['retire-kek']).status).not.toBe(0);
    expect(setup([]).status).not.toBe(0);
  });

  const shellcheckAvailable = toolAvailable('shellcheck', 'vault-setup: shellcheck of vault/setup.sh');
  (shellcheckAvailable ? test : test.skip)('passes shellcheck', () => {
    const result = spawnSync('shellcheck', [SETUP], { encoding: 'utf8' });
    expect(result.stdout).toBe('');
    expect(result.status).toBe(0);
  });
});
