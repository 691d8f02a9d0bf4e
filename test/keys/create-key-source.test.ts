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
  kubernetesTokenFile: '/var/run/secrets/vault/token',
  namespace: undefined,
  pollIntervalMs: 30000,
  timeoutMs: 2000,
};

describe('createKeySource', () => {
  // Every other value was validated when the environment was parsed (test/config.test.ts); this refusal stays
  // here because it guards a security property whoever builds the options.
  it.each<[string, KeySourceOptions, string]>([
    [
      'dev in production',
      { kind: 'dev', stateDir: '/tmp/x', production: true },
      'KEY_SOURCE=dev is refused when NODE_ENV=production',
    ],
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
