import { KeySourceConfigError } from '../../src/keys/errors';
import { createKeySource, type KeySourceOptions, type VaultKeySourceConfig } from '../../src/keys/create-key-source';
import { captureLogs, newRegistry } from './support/key-test-kit';

const deps = () => ({ logger: captureLogs().logger, registry: newRegistry() });
const vault: VaultKeySourceConfig = {
  kind: 'vault',
  address: 'http://127.0.0.1:8200',
  auth: 'agent',
  kvMount: 'kv-dev',
  kvPath: 'provisioning_secret_enc_key',
  kvField: 'key',
  kubernetesRole: undefined,
  kubernetesMount: 'kubernetes',
  kubernetesTokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
  namespace: undefined,
  pollIntervalMs: 30000,
  timeoutMs: 2000,
};

describe('createKeySource', () => {
  it.each<[string, KeySourceOptions, string]>([
    [
      'dev in production',
      { kind: 'dev', stateDir: '/tmp/x', production: true },
      'KEY_SOURCE=dev is refused when NODE_ENV=production',
    ],
    [
      'kubernetes auth without a role',
      { ...vault, auth: 'kubernetes', production: true },
      'VAULT_AUTH=kubernetes needs VAULT_K8S_ROLE',
    ],
    [
      'a Vault address that is not a URL',
      { ...vault, address: 'vault:8200', production: true },
      'VAULT_ADDR must be an http(s) URL',
    ],
    [
      'a zero Vault timeout (unbounded calls)',
      { ...vault, timeoutMs: 0, production: true },
      'VAULT_TIMEOUT_MS must be a positive integer',
    ],
    [
      'a zero poll interval',
      { ...vault, pollIntervalMs: 0, production: true },
      'VAULT_POLL_INTERVAL_MS must be a positive integer',
    ],
    [
      'an empty KV field',
      { ...vault, kvField: ' ', production: true },
      'VAULT_KV_MOUNT, VAULT_KV_PATH and VAULT_KV_FIELD must not be empty',
    ],
    ['an empty key file path', { kind: 'file', keyFile: '', production: true }, 'the file key source needs KEY_FILE'],
  ])('refuses %s with a config error', (_name, options, message) => {
    expect(() => createKeySource(options, deps())).toThrow(KeySourceConfigError);
    expect(() => createKeySource(options, deps())).toThrow(message);
  });

  it('builds each kind, registering the provsec_key_source_ metrics on the injected registry', async () => {
    for (const options of [
      { kind: 'file', keyFile: '/nonexistent/provisioning-key', production: true },
      { kind: 'dev', stateDir: '/tmp/never-started', production: false },
      { ...vault, auth: 'kubernetes', kubernetesRole: 'provsec', production: true },
    ] as KeySourceOptions[]) {
      const registry = newRegistry();
      const source = createKeySource(options, { logger: captureLogs().logger, registry });
      expect(source.kind).toBe(options.kind);
      expect(source.status()).toEqual({ kind: options.kind, state: 'loading', knownKekIds: [] });
      const names = (await registry.getMetricsAsJSON()).map((metric) => metric.name).sort();
      expect(names).toEqual([
        'provsec_key_source_current_kek_info',
        'provsec_key_source_last_reload_timestamp_seconds',
        'provsec_key_source_reload_failures_total',
        'provsec_key_source_reloads_total',
        'provsec_key_source_state',
      ]);
    }
  });
});
