/**
 * The vault key source against a local Vault STAND-IN (test/support/vault-stand-in.ts) that speaks
 * Vault's KV v2 and auth HTTP shapes, including 403, 404, 503 (sealed), slow answers and expiring
 * tokens.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { KekUnavailableError } from '../../src/crypto/errors';
import { importKekFromHex } from '../../src/crypto/kek';
import { createKeySource, type VaultKeySourceConfig } from '../../src/keys/create-key-source';
import { LOGIN_BACKOFF } from '../../src/keys/vault-http';
import type { KeySource } from '../../src/keys/key-source';
import { freePort } from '../support/free-port';
import { VaultStandIn, type KubernetesAuthStandIn } from '../support/vault-stand-in';
import {
  captureLogs,
  expectNoKeyMaterial,
  metricValue,
  newRegistry,
  randomKeyHex,
  sleep,
  waitFor,
  withTempDir,
  type CapturedLogs,
} from './support/key-test-kit';

const MOUNT = 'kv-dev';
const PATH = 'provisioning_secret_enc_key';
const jwtWith = (claims: Record<string, unknown>) =>
  `eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify({ sub: 'system:serviceaccount:provsec:provsec', ...claims })).toString('base64url')}.c2lnbmF0dXJlLXN0YW5kLWlu`;
/** A projected token minted for audience `vault`, the one vault/setup.sh binds the role to. */
const JWT = jwtWith({ aud: ['vault'] });
const kekIdOf = (hex: string) => importKekFromHex(hex).kekId;

interface Harness {
  vault: VaultStandIn;
  source: KeySource;
  logs: CapturedLogs;
  registry: Registry;
  /** Every key the test put into the stand-in. */
  keys: string[];
  put(hex?: string): { version: number; hex: string; kekId: string };
}

const harnesses: Harness[] = [];
const cleanups: Array<() => Promise<void>> = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => process.off('unhandledRejection', onUnhandled));

afterEach(async () => {
  for (const h of harnesses.splice(0)) {
    await h.source.stop();
    await h.vault.close();
    const issuedTokens = h.vault.requests
      .map((request) => request.vaultToken)
      .filter((token): token is string => token !== undefined);
    expectNoKeyMaterial(h.logs.text(), h.keys);
    for (const secretText of [JWT, ...issuedTokens]) expect(h.logs.text()).not.toContain(secretText);
  }
  for (const cleanup of cleanups.splice(0)) await cleanup();
  // "Vault trouble never crashes the process": nothing may escape as an unhandled rejection.
  expect(unhandled).toEqual([]);
});

async function harness(options: {
  mode?: 'agent-proxy' | 'server';
  kubernetes?: Partial<KubernetesAuthStandIn>;
  namespace?: string;
  pollIntervalMs?: number;
  timeoutMs?: number;
  before?: (put: Harness['put'], vault: VaultStandIn) => void;
  address?: string;
  jwtOnDisk?: string;
  /** The source's clock (login backoff, delayed activation); real time unless given. */
  nowMs?: () => number;
  /** KEK_ACTIVATION_DELAY_SECONDS in ms. */
  kekActivationDelayMs?: number;
}): Promise<Harness> {
  const kubernetes: KubernetesAuthStandIn | undefined = options.kubernetes
    ? {
        mount: 'kubernetes',
        role: 'provsec',
        jwt: JWT,
        audience: 'vault',
        tokenTtlSeconds: 60,
        renewable: true,
        ...options.kubernetes,
      }
    : undefined;
  const vault = await VaultStandIn.start({
    mode: options.mode ?? (kubernetes ? 'server' : 'agent-proxy'),
    ...(kubernetes ? { kubernetes } : {}),
  });
  const keys: string[] = [];
  const put: Harness['put'] = (hex = randomKeyHex()) => {
    keys.push(hex);
    return { version: vault.writeSecret(MOUNT, PATH, { key: hex }), hex, kekId: kekIdOf(hex) };
  };
  options.before?.(put, vault);
  const temp = await withTempDir('vault-sa');
  cleanups.push(temp.cleanup);
  const tokenFile = join(temp.dir, 'token');
  await writeFile(tokenFile, `${options.jwtOnDisk ?? JWT}\n`);
  const config: VaultKeySourceConfig = {
    kind: 'vault',
    address: options.address ?? vault.address,
    kvMount: MOUNT,
    kvPath: PATH,
    kvField: 'key',
    ...(kubernetes
      ? { auth: 'kubernetes' as const, kubernetesRole: 'provsec' }
      : { auth: 'agent' as const, kubernetesRole: undefined }),
    kubernetesMount: 'kubernetes',
    kubernetesTokenFile: tokenFile,
    namespace: options.namespace,
    pollIntervalMs: options.pollIntervalMs ?? 80,
    timeoutMs: options.timeoutMs ?? 300,
  };
  const logs = captureLogs();
  const registry = newRegistry();
  const source = createKeySource(
    { ...config, production: true },
    {
      logger: logs.logger,
      registry,
      ...(options.nowMs ? { nowMs: options.nowMs } : {}),
      ...(options.kekActivationDelayMs === undefined ? {} : { kekActivationDelayMs: options.kekActivationDelayMs }),
    },
  );
  const h: Harness = { vault, source, logs, registry, keys, put };
  harnesses.push(h);
  await source.start();
  return h;
}

const failures = (h: Harness, reason: string) =>
  metricValue(h.registry, 'provsec_key_source_reload_failures_total', { reason });
const currentKekId = (h: Harness) => h.source.currentKeyring()?.current.kekId;

async function timed<T>(work: Promise<T>): Promise<{ ms: number; result: PromiseSettledResult<T> }> {
  const started = performance.now();
  const [result] = await Promise.allSettled([work]);
  return { ms: performance.now() - started, result: result as PromiseSettledResult<T> };
}

describe('vault key source through the Vault Agent API proxy (agent auth)', () => {
  it('loads the current KV v2 version, sends no token, sends the namespace header, and reports ready', async () => {
    let v1!: ReturnType<Harness['put']>;
    const h = await harness({
      namespace: 'ns_dev/ns_wcm_infra/ac_access_control',
      before: (put) => (v1 = put(randomKeyHex(true))),
    });
    expect(h.source.status()).toMatchObject({
      kind: 'vault',
      state: 'ready',
      currentKekId: v1.kekId,
      knownKekIds: [v1.kekId],
    });
    expect(h.source.currentKeyring()?.current.kekVersion).toBe(1);
    expect(h.vault.requests.length).toBeGreaterThanOrEqual(2);
    expect(h.vault.requests.every((request) => request.vaultToken === undefined)).toBe(true);
    expect(
      h.vault.requests.every((request) => request.vaultNamespace === 'ns_dev/ns_wcm_infra/ac_access_control'),
    ).toBe(true);
    expect(
      h.vault.requests
        .slice(0, 2)
        .map((request) => `${request.path}${request.version ? `?version=${request.version}` : ''}`),
    ).toEqual([`/v1/${MOUNT}/metadata/${PATH}`, `/v1/${MOUNT}/data/${PATH}?version=1`]);
    expect(await metricValue(h.registry, 'provsec_key_source_current_kek_info', { kek_id: v1.kekId })).toBe(1);
  });

  it("ignores node-vault's environment fallbacks: VAULT_TOKEN is never sent, VAULT_NAMESPACE only via options", async () => {
    const saved = { token: process.env.VAULT_TOKEN, namespace: process.env.VAULT_NAMESPACE };
    process.env.VAULT_TOKEN = 'hvs.from-the-environment';
    process.env.VAULT_NAMESPACE = 'ns-from-the-environment';
    try {
      const h = await harness({ before: (put) => void put() });
      expect(h.source.status().state).toBe('ready');
      expect(
        h.vault.requests.every((request) => request.vaultToken === undefined && request.vaultNamespace === undefined),
      ).toBe(true);
    } finally {
      for (const [name, value] of [
        ['VAULT_TOKEN', saved.token],
        ['VAULT_NAMESPACE', saved.namespace],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('follows a rotation: the new current version encrypts, the previous one stays for decryption', async () => {
    let v1!: ReturnType<Harness['put']>;
    const h = await harness({ before: (put) => (v1 = put()) });
    const changes: string[] = [];
    h.source.onChange((keyring) => changes.push(keyring.current.kekId));
    const v2 = h.put();
    await waitFor(() => currentKekId(h) === v2.kekId, 'the rotation to be picked up');
    expect(changes).toEqual([v2.kekId]);
    expect(h.source.currentKeyring()?.has(v1.kekId)).toBe(true);
    expect(h.source.currentKeyring()?.current.kekVersion).toBe(2);
    expect(await metricValue(h.registry, 'provsec_key_source_reloads_total')).toBe(2);
  });

  it('fetches an older version by number when a row needs it, checks its fingerprint, then serves it from cache', async () => {
    let v1!: ReturnType<Harness['put']>;
    const h = await harness({ before: (put) => ((v1 = put()), put(), put()) });
    expect(h.source.currentKeyring()?.has(v1.kekId)).toBe(false);
    const keyrings = await Promise.all(Array.from({ length: 5 }, () => h.source.keyringFor(v1.kekId, 1)));
    expect(keyrings.every((keyring) => keyring.decryptionKey(v1.kekId).kekVersion === 1)).toBe(true);
    expect(h.vault.requestsTo('/data/').filter((request) => request.version === '1')).toHaveLength(1);
    const cached = await timed(h.source.keyringFor(v1.kekId, 1));
    expect(cached.result.status).toBe('fulfilled');
    expect(h.vault.requestsTo('/data/').filter((request) => request.version === '1')).toHaveLength(1);
    expect(h.source.status().knownKekIds).toContain(v1.kekId);
  });

  it('refuses a fetched version whose key does not match the row KEK id (fail closed, nothing cached)', async () => {
    let v1!: ReturnType<Harness['put']>;
    let v2!: ReturnType<Harness['put']>;
    const h = await harness({ before: (put) => ((v1 = put()), (v2 = put()), put()) });
    const attempt = h.source.keyringFor(v1.kekId, 2);
    await expect(attempt).rejects.toThrow(KekUnavailableError);
    await expect(h.source.keyringFor(v1.kekId, 2)).rejects.toThrow(/holds a different key/);
    expect(h.source.currentKeyring()?.has(v2.kekId)).toBe(false);
    expect(h.source.currentKeyring()?.has(v1.kekId)).toBe(false);
  });

  it('a row with no version label and an unknown KEK fails closed without asking Vault', async () => {
    const h = await harness({ before: (put) => void put() });
    const before = h.vault.requests.length;
    await expect(h.source.keyringFor(kekIdOf(randomKeyHex()), null)).rejects.toThrow(/names no Vault version/);
    expect(h.vault.requests.length).toBe(before);
  });

  it('drops a version once Vault reports it deleted, so its rows fail closed with a clear error', async () => {
    let v1!: ReturnType<Harness['put']>;
    const h = await harness({ before: (put) => (v1 = put()) });
    const v2 = h.put();
    await waitFor(() => currentKekId(h) === v2.kekId, 'the rotation');
    expect(h.source.currentKeyring()?.has(v1.kekId)).toBe(true);
    h.vault.deleteVersion(MOUNT, PATH, 1);
    await waitFor(() => h.source.currentKeyring()?.has(v1.kekId) === false, 'the deleted version to leave the keyring');
    const refused = h.source.keyringFor(v1.kekId, 1);
    await expect(refused).rejects.toThrow(KekUnavailableError);
    await expect(h.source.keyringFor(v1.kekId, 1)).rejects.toThrow(
      `KEK ${v1.kekId}: Vault version 1 of ${MOUNT}/${PATH} is unavailable: ${MOUNT}/${PATH} version 1 is deleted in Vault`,
    );
    expect(h.source.status().state).toBe('ready');
  });

  it('refuses a destroyed version fetched on demand', async () => {
    let v1!: ReturnType<Harness['put']>;
    const h = await harness({ before: (put, vault) => ((v1 = put()), put(), vault.destroyVersion(MOUNT, PATH, 1)) });
    await expect(h.source.keyringFor(v1.kekId, 1)).rejects.toThrow(/version 1 is destroyed in Vault/);
  });

  it('keeps a version whose deletion is only scheduled (delete_version_after, deletion_time in the future)', async () => {
    let v1!: ReturnType<Harness['put']>;
    const h = await harness({
      before: (put, vault) => ((v1 = put()), vault.deleteVersion(MOUNT, PATH, 1, new Date(Date.now() + 3_600_000))),
    });
    expect(currentKekId(h)).toBe(v1.kekId);
    await sleep(200);
    expect(currentKekId(h)).toBe(v1.kekId);
    expect(h.source.status().state).toBe('ready');
  });

  it('withdraws the keyring when the CURRENT version is deleted (nothing encrypts under a deleted key), and recovers on a new version', async () => {
    let v1!: ReturnType<Harness['put']>;
    const h = await harness({ before: (put) => (v1 = put()) });
    h.vault.deleteVersion(MOUNT, PATH, 1);
    await waitFor(() => h.source.currentKeyring() === undefined, 'the keyring to be withdrawn');
    expect(h.source.status()).toMatchObject({ state: 'failed', knownKekIds: [] });
    expect(h.source.status().lastError).toMatch(
      /current version 1 of kv-dev\/provisioning_secret_enc_key is deleted in Vault/,
    );
    await expect(h.source.keyringFor(v1.kekId, 1)).rejects.toThrow(KekUnavailableError);
    const v2 = h.put();
    await waitFor(() => currentKekId(h) === v2.kekId, 'a new version to restore the keyring');
    expect(h.source.status().state).toBe('ready');
  });

  it('while Vault is sealed (503) keeps serving the cached keyring at once, then recovers', async () => {
    let v1!: ReturnType<Harness['put']>;
    let v2!: ReturnType<Harness['put']>;
    const h = await harness({ before: (put) => ((v1 = put()), (v2 = put())) });
    h.vault.seal();
    await waitFor(async () => (await failures(h, 'sealed')) > 0, 'a sealed failure to be counted');
    expect(h.source.status()).toMatchObject({ state: 'degraded', currentKekId: v2.kekId });
    expect(h.source.status().lastError).toMatch(/HTTP 503 \(Vault is sealed\)/);
    const cached = await timed(h.source.keyringFor(v2.kekId, 2));
    expect(cached.result.status).toBe('fulfilled');
    expect(cached.ms).toBeLessThan(20);
    await expect(h.source.keyringFor(v1.kekId, 1)).rejects.toThrow(/HTTP 503/);
    expect(await metricValue(h.registry, 'provsec_key_source_state', { state: 'degraded' })).toBe(1);
    h.vault.unseal();
    await waitFor(() => h.source.status().state === 'ready', 'recovery after unseal');
    expect(currentKekId(h)).toBe(v2.kekId);
  });

  it('a standby without an active node (503 "no active Vault instance found") is labelled standby, not sealed', async () => {
    let v1!: ReturnType<Harness['put']>;
    const h = await harness({ before: (put) => (v1 = put()) });
    h.vault.loseActiveNode();
    await waitFor(async () => (await failures(h, 'standby')) > 0, 'a standby failure to be counted');
    expect(await failures(h, 'sealed')).toBe(0);
    expect(h.source.status()).toMatchObject({ state: 'degraded', currentKekId: v1.kekId });
    expect(h.source.status().lastError).toMatch(/HTTP 503 \(no active Vault instance found\)/);
    h.vault.restoreActiveNode();
    await waitFor(() => h.source.status().state === 'ready', 'recovery once a node is active again');
  });

  it("the Agent proxy's 500 while Vault is unreachable behind it is labelled unreachable, not vault_error", async () => {
    let v1!: ReturnType<Harness['put']>;
    const h = await harness({ before: (put) => (v1 = put()) });
    h.vault.loseUpstream();
    await waitFor(async () => (await failures(h, 'unreachable')) > 0, 'an unreachable failure to be counted');
    expect(await failures(h, 'vault_error')).toBe(0);
    expect(h.source.status()).toMatchObject({ state: 'degraded', currentKekId: v1.kekId });
    expect(h.source.status().lastError).toMatch(/HTTP 500 \(failed to get the response: /);
    h.vault.restoreUpstream();
    await waitFor(() => h.source.status().state === 'ready', 'recovery once the agent reaches Vault again');
  });

  it('a destroyed current version (404 with data: null and destroyed: true) withdraws the keyring, labelled destroyed', async () => {
    let v1!: ReturnType<Harness['put']>;
    const h = await harness({ before: (put) => (v1 = put()) });
    h.vault.destroyVersion(MOUNT, PATH, 1);
    await waitFor(() => h.source.currentKeyring() === undefined, 'the keyring to be withdrawn');
    expect(await failures(h, 'destroyed')).toBeGreaterThan(0);
    expect(await failures(h, 'deleted')).toBe(0);
    expect(h.source.status().lastError).toMatch(
      /current version 1 of kv-dev\/provisioning_secret_enc_key is destroyed/,
    );
    await expect(h.source.keyringFor(v1.kekId, 1)).rejects.toThrow(KekUnavailableError);
  });

  it('bounds a slow Vault by the timeout: cached KEKs answer at once, fetches fail closed in time', async () => {
    let v1!: ReturnType<Harness['put']>;
    let v2!: ReturnType<Harness['put']>;
    const h = await harness({ timeoutMs: 200, before: (put) => ((v1 = put()), (v2 = put())) });
    h.vault.setResponseDelayMs(2000);
    const cached = await timed(h.source.keyringFor(v2.kekId, 2));
    expect(cached.result.status).toBe('fulfilled');
    expect(cached.ms).toBeLessThan(20);
    const fetch = await timed(h.source.keyringFor(v1.kekId, 1));
    expect(fetch.result.status).toBe('rejected');
    expect(String((fetch.result as PromiseRejectedResult).reason)).toMatch(
      /KekUnavailableError: .*(no answer within|timed out)/,
    );
    expect(fetch.ms).toBeLessThan(700);
    await waitFor(async () => (await failures(h, 'timeout')) > 0, 'a timeout failure to be counted');
    expect(h.source.status()).toMatchObject({ state: 'degraded', currentKekId: v2.kekId });
    h.vault.setResponseDelayMs(0);
    await waitFor(() => h.source.status().state === 'ready', 'recovery once Vault answers again');
  });

  it('starts against a missing secret (404) without throwing: not ready, then ready once the secret is written', async () => {
    const h = await harness({});
    expect(h.source.status()).toMatchObject({ state: 'failed', knownKekIds: [] });
    expect(h.source.status().lastError).toMatch(/Vault has no KV v2 secret at kv-dev\/provisioning_secret_enc_key/);
    expect(await failures(h, 'not_found')).toBeGreaterThan(0);
    const v1 = h.put();
    await waitFor(() => currentKekId(h) === v1.kekId, 'the secret to be loaded');
  });

  it('starts against an unreachable Vault without throwing (state failed, reason unreachable)', async () => {
    const h = await harness({ address: `http://127.0.0.1:${await freePort()}` });
    expect(h.source.status().state).toBe('failed');
    expect(await failures(h, 'unreachable')).toBeGreaterThan(0);
  });

  it('rejects a KV value that is not a KEK (31 bytes) without logging it, keeping the last good keyring', async () => {
    let v1!: ReturnType<Harness['put']>;
    const h = await harness({ before: (put) => (v1 = put()) });
    const shortKey = randomKeyHex().slice(0, 62);
    h.keys.push(shortKey);
    h.vault.writeSecret(MOUNT, PATH, { key: shortKey });
    await waitFor(async () => (await failures(h, 'invalid_key')) > 0, 'the short key to be rejected');
    expect(h.source.status()).toMatchObject({ state: 'degraded', currentKekId: v1.kekId });
    expect(h.source.status().lastError).toMatch(/version 2 field "key": a KEK must be 64 hex digits, got 62/);
  });
});

describe('vault key source: delayed KEK activation from KV created_time', () => {
  test('a new version is known at once but seals only once its KV created_time is older than the activation delay', async () => {
    let nowMs = Date.now();
    const h = await harness({
      before: (put) => void put(),
      kekActivationDelayMs: 60_000,
      nowMs: () => nowMs,
    });
    const v1KekId = currentKekId(h);
    const v2 = h.put();

    await waitFor(() => h.source.currentKeyring()?.has(v2.kekId) === true, 'the new version to be loaded');
    // Known (it opens rows) but not active: sealing stays on version 1, and /v1/keys can say when.
    expect(currentKekId(h)).toBe(v1KekId);
    const pending = h.source.pendingKek();
    expect(pending?.kekId).toBe(v2.kekId);
    const createdMs = pending === undefined ? Number.NaN : pending.activatesAt.getTime() - 60_000;
    expect(Math.abs(createdMs - Date.now())).toBeLessThan(10_000);

    nowMs = createdMs + 60_000;
    expect(currentKekId(h)).toBe(v2.kekId);
    expect(h.source.pendingKek()).toBeUndefined();
  });
});

describe('vault key source with Kubernetes auth', () => {
  it('logs in with the role and the service-account JWT, then sends the issued token on every KV read', async () => {
    let v1!: ReturnType<Harness['put']>;
    const h = await harness({ kubernetes: {}, before: (put) => (v1 = put()) });
    expect(currentKekId(h)).toBe(v1.kekId);
    expect(h.vault.logins).toBe(1);
    const [login, ...kvReads] = h.vault.requests;
    expect(login).toMatchObject({
      method: 'POST',
      path: '/v1/auth/kubernetes/login',
      vaultToken: undefined,
      status: 200,
    });
    expect(kvReads.length).toBeGreaterThan(0);
    expect(kvReads.every((request) => request.vaultToken?.startsWith('hvs.') && request.status === 200)).toBe(true);
  });

  it('renews the token with renew-self before it expires', async () => {
    const h = await harness({ kubernetes: { tokenTtlSeconds: 1 }, before: (put) => void put() });
    await waitFor(() => h.vault.renewals >= 1, 'a renew-self call', 3000);
    await sleep(1200);
    // Past the original 1 s lease, the same login still works because it was renewed.
    expect(h.vault.logins).toBe(1);
    expect(h.source.status().state).toBe('ready');
    expect(h.vault.requests.filter((request) => request.status === 403)).toHaveLength(0);
  });

  it('on 403 (token revoked) logs in again once and retries, without a failed load', async () => {
    const h = await harness({ kubernetes: {}, before: (put) => void put() });
    h.vault.revokeAllTokens();
    await waitFor(() => h.vault.logins === 2, 'a second login after the 403');
    await waitFor(
      () =>
        h.vault.requests.filter((request) => request.status === 200 && request.path.includes('/metadata/')).length >= 2,
      'a successful poll after re-login',
    );
    expect(h.vault.requests.some((request) => request.status === 403)).toBe(true);
    // The revoked token's revoke-self is refused (403): it is gone already, which is no failure to report.
    await waitFor(() => h.vault.requestsTo('/revoke-self').length >= 1, 'the old token to be revoked');
    expect(h.vault.requestsTo('/revoke-self')[0]?.status).toBe(403);
    await sleep(100);
    expect(h.logs.text()).not.toContain('could not revoke');
    expect(h.source.status().state).toBe('ready');
    expect(await metricValue(h.registry, 'provsec_key_source_reload_failures_total')).toBe(0);
  });

  it('replaces a non-renewable token that expires by logging in again, with no 403 and no failure, and revokes the old one', async () => {
    const h = await harness({ kubernetes: { tokenTtlSeconds: 1, renewable: false }, before: (put) => void put() });
    await waitFor(() => h.vault.logins >= 2, 'a fresh login before expiry', 3000);
    await waitFor(() => h.vault.revocations >= 1, 'the replaced token to be revoked');
    await sleep(300);
    expect(h.source.status().state).toBe('ready');
    expect(await metricValue(h.registry, 'provsec_key_source_reload_failures_total')).toBe(0);
    expect(h.vault.liveTokens()).toBe(1);
    expect(h.vault.requestsTo('/revoke-self').every((request) => request.status === 204)).toBe(true);
  });

  it("renew-self is capped by the token's max TTL: once the lease shrinks, the source logs in again before expiry instead of renewing", async () => {
    const h = await harness({ kubernetes: { tokenTtlSeconds: 3, maxTtlSeconds: 4 }, before: (put) => void put() });
    // Renewal at ~2 s is granted 2 s (what is left of the 4 s max): a fresh login follows at ~3.3 s, before 4 s.
    await waitFor(() => h.vault.logins >= 2, 'a fresh login once renewal was capped', 6000);
    expect(h.vault.renewals).toBeGreaterThanOrEqual(1);
    await sleep(200);
    expect(h.vault.requests.filter((request) => request.status === 403)).toHaveLength(0);
    expect(h.source.status().state).toBe('ready');
    expect(await metricValue(h.registry, 'provsec_key_source_reload_failures_total')).toBe(0);
    expect(h.vault.liveTokens()).toBe(1);
  });

  it('revokes its token at stop: nothing it logged in with stays live in Vault', async () => {
    const h = await harness({ kubernetes: {}, before: (put) => void put() });
    expect(h.vault.liveTokens()).toBe(1);
    await h.source.stop();
    expect(h.vault.liveTokens()).toBe(0);
    expect(h.vault.requestsTo('/revoke-self')).toMatchObject([{ method: 'POST', status: 204 }]);
  });

  it('stopped while a login is in flight, it revokes the token that login brings back', async () => {
    const h = await harness({ kubernetes: {}, before: (put) => void put() });
    h.vault.setResponseDelayMs(150);
    h.vault.revokeAllTokens();
    await waitFor(() => h.vault.logins === 2, 'a second login to be under way');
    await h.source.stop();
    expect(h.vault.liveTokens()).toBe(0);
  });

  it('a load still running at stop brings back no live token: the closed client does not log in again', async () => {
    // Reads may take 2 s: the delayed metadata answer must arrive (not time out) after stop().
    const h = await harness({ kubernetes: {}, pollIntervalMs: 100, timeoutMs: 2000, before: (put) => void put() });
    expect(h.vault.liveTokens()).toBe(1);
    // The next poll sees a new version, so its load makes two reads: metadata, then the version.
    // stop() lands between them, while the metadata answer is delayed; it revokes the token, so the
    // version read needs a login, which the stopped source must not make.
    h.put();
    h.vault.setResponseDelayMs(300);
    const metadataReads = h.vault.requestsTo('/metadata/').length;
    await waitFor(() => h.vault.requestsTo('/metadata/').length > metadataReads, 'the next poll');
    await h.source.stop();
    // The load is not awaited by stop() (it may wait on Vault for its whole timeout): give it the
    // time to make its version read, and the login that read would need.
    await sleep(1500);
    expect(h.vault.requestsTo('/revoke-self')).toMatchObject([{ status: 204 }]);
    expect(h.vault.logins).toBe(1);
    expect(h.vault.liveTokens()).toBe(0);
  });

  it('a 403 that persists (policy missing) backs off re-login exponentially up to the cap, leaving one live token', async () => {
    let nowMs = Date.now();
    const h = await harness({
      // A day-long token: the injected clock jumps by minutes, and the token must not expire meanwhile.
      kubernetes: { tokenTtlSeconds: 86_400 },
      nowMs: () => nowMs,
      before: (put, vault) => (put(), vault.denyReads()),
    });
    const polls = () => h.vault.requestsTo('/metadata/').length;
    const afterPolls = async (count: number) => {
      const target = polls() + count;
      await waitFor(() => polls() >= target, `${count} more polls`);
    };
    // Login, 403, one re-login with a fresh token, 403 again: the policy is wrong, not the token.
    expect(h.vault.logins).toBe(2);
    expect(h.source.status()).toMatchObject({ state: 'failed' });
    await afterPolls(3);
    expect(h.vault.logins).toBe(2);
    expect(h.source.status().lastError).toMatch(/HTTP 403 \(permission denied\); not logging in again for 5 s/);
    // Each useless login logs the wait before the next one; read them there (the status message races the polls).
    const backoffDelaysSeconds = () =>
      [...h.logs.text().matchAll(/"nextLoginInMs":(\d+)/g)].map((match) => Number(match[1]) / 1000);
    for (let attempt = 0; attempt < 9; attempt += 1) {
      const before = h.vault.logins;
      nowMs += LOGIN_BACKOFF.maxMs;
      await waitFor(() => backoffDelaysSeconds().length === attempt + 2, 'one more login that did not help');
      await afterPolls(2);
      expect(h.vault.logins).toBe(before + 1);
      expect(h.vault.liveTokens()).toBe(1);
    }
    expect(backoffDelaysSeconds()).toEqual([5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
    // Half a delay later still no login.
    nowMs += 300_000;
    await afterPolls(2);
    expect(h.vault.logins).toBe(11);
    expect(await failures(h, 'forbidden')).toBeGreaterThan(10);
    expect(h.vault.revocations).toBe(10);
  });

  it('a refused login (wrong audience) is retried on the backoff, not on every poll', async () => {
    let nowMs = Date.now();
    const wrong = jwtWith({ aud: ['https://kubernetes.default.svc'] });
    const h = await harness({ kubernetes: {}, jwtOnDisk: wrong, nowMs: () => nowMs, before: (put) => void put() });
    const loginAttempts = () => h.vault.requestsTo('/login').length;
    const polls = h.vault.requests.length;
    await sleep(400);
    expect(h.vault.requests.length).toBe(polls);
    expect(loginAttempts()).toBe(1);
    expect(h.source.status().lastError).toMatch(/invalid audience .*; not logging in again for 5 s/);
    nowMs += LOGIN_BACKOFF.initialMs;
    await waitFor(() => loginAttempts() === 2, 'a second login attempt once 5 s have passed');
    await sleep(400);
    expect(loginAttempts()).toBe(2);
    expect(h.source.status().lastError).toMatch(/not logging in again for 10 s/);
  });

  it("refuses the automounted token (audience: the API server) with the plugin's 403 audience error, labelled forbidden", async () => {
    const automounted = jwtWith({ aud: ['https://kubernetes.default.svc.cluster.local'] });
    const h = await harness({ kubernetes: { jwt: automounted }, jwtOnDisk: automounted, before: (put) => void put() });
    expect(h.source.status().state).toBe('failed');
    expect(h.source.status().lastError).toMatch(
      /Kubernetes login \(auth\/kubernetes\/login, role provsec\): HTTP 403 \(invalid audience \(aud\) claim: audience claim does not match any expected audience\)/,
    );
    expect(h.vault.logins).toBe(0);
    expect(await failures(h, 'forbidden')).toBeGreaterThan(0);
  });

  it('a rejected login (wrong JWT) leaves the source failed with a clear reason, never crashing or logging the JWT', async () => {
    const h = await harness({ kubernetes: {}, jwtOnDisk: `${JWT}-not-the-right-one`, before: (put) => void put() });
    expect(h.source.status().state).toBe('failed');
    expect(h.source.status().lastError).toMatch(
      /Kubernetes login \(auth\/kubernetes\/login, role provsec\): HTTP 403 \(permission denied\)/,
    );
    expect(await failures(h, 'forbidden')).toBeGreaterThan(0);
    expect(h.logs.text()).not.toContain('-not-the-right-one');
  });
});
