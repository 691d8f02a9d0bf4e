/**
 * The Vault Agent template in k8s/base/deployment.yaml, rendered with Vault-shaped data by the
 * evaluator in support/consul-template-subset.ts (its header lists what it implements), and the
 * result read by the service's own key file parser (src/keys/key-file-format.ts).
 */
// Typed asymmetric matchers (@types/jest gives them as `any`).
import { expect } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseKeyFile } from '../../src/keys/key-file-format';
import { goJson, JsonNumber, renderAgentTemplate, TemplateSubsetError } from './support/consul-template-subset';
import { at, findObject, K8S_ROOT, loadManifestFile, REPO_ROOT } from './support/manifests';
import { VaultKvStandIn } from './support/vault-kv-stand-in';
import { toolAvailable } from '../support/external-tools';

const TEMPLATE_ANNOTATION = 'vault.hashicorp.com/agent-inject-template-provisioning-key';
const deployment = findObject(loadManifestFile(join(K8S_ROOT, 'base', 'deployment.yaml')), 'Deployment', 'provsec');
const template = at<Record<string, string>>(deployment, 'spec.template.metadata.annotations')[TEMPLATE_ANNOTATION]!;

/** The ADR's format: 64 upper-case hex digits (the key= line of `openssl enc -P`). */
const adrKeyHex = (): string => randomBytes(32).toString('hex').toUpperCase();
/** The KV `created_time` the stand-in gives version n (written n seconds into 2026), as Vault spells it. */
const createdTime = (version: number): string =>
  new Date(Date.UTC(2026, 0, 1, 0, 0, version)).toISOString().replace('.000Z', '.000000000Z');
const createdAtOf = (...versions: number[]): Record<string, string> =>
  Object.fromEntries(versions.map((version) => [String(version), createdTime(version)]));

function kekSecret(): VaultKvStandIn {
  return new VaultKvStandIn('kv-dev', 'provisioning_secret_enc_key');
}

function render(secret: VaultKvStandIn): string {
  return renderAgentTemplate(template, secret.read);
}

/** The rendered keyring file's `keys` object (version label -> key), read as plain JSON. */
function keysOf(keyFile: string): Record<string, unknown> {
  return (JSON.parse(keyFile) as { keys: Record<string, unknown> }).keys;
}

describe('the Vault Agent template renders the keyring file the file key source reads', () => {
  test('the first KEK version alone (no predecessor) gives a one-key keyring whose current key is version 1', () => {
    const secret = kekSecret();
    const keyHex = adrKeyHex();
    secret.put({ key: keyHex });

    const file = render(secret);

    expect(JSON.parse(file)).toEqual({ current: 1, keys: { '1': keyHex }, createdAt: createdAtOf(1) });
    const keyring = parseKeyFile(file);
    expect(keyring.current.kekVersion).toBe(1);
    expect(Buffer.from(keyring.current.key).toString('hex')).toBe(keyHex.toLowerCase());
  });

  test('after a rotation both versions are in the file and the new one is current', () => {
    const secret = kekSecret();
    const firstHex = adrKeyHex();
    const secondHex = adrKeyHex();
    secret.put({ key: firstHex });
    secret.put({ key: secondHex });

    const file = render(secret);

    expect(JSON.parse(file)).toEqual({
      current: 2,
      keys: { '1': firstHex, '2': secondHex },
      createdAt: createdAtOf(1, 2),
    });
    const keyring = parseKeyFile(file);
    expect(keyring.current.kekVersion).toBe(2);
    expect(
      keyring
        .entries()
        .map((kek) => kek.kekVersion)
        .sort(),
    ).toEqual([1, 2]);
  });

  test("each version's KV created_time reaches the keyring, so a new version stays pending until the activation delay has passed", () => {
    const secret = kekSecret();
    secret.put({ key: adrKeyHex() });
    secret.put({ key: adrKeyHex() });

    const keyring = parseKeyFile(render(secret));
    const activationDelayMs = 120_000;
    const secondCreatedMs = Date.parse(createdTime(2));

    expect(keyring.activeAt(secondCreatedMs + activationDelayMs - 1, activationDelayMs).current.kekVersion).toBe(1);
    expect(keyring.pendingAt(secondCreatedMs, activationDelayMs)?.activatesAt.getTime()).toBe(
      secondCreatedMs + activationDelayMs,
    );
    expect(keyring.activeAt(secondCreatedMs + activationDelayMs, activationDelayMs).current.kekVersion).toBe(2);
  });

  test('a retired (soft-deleted) version leaves the file without ever being read, so the render does not fail on it', () => {
    const secret = kekSecret();
    secret.put({ key: adrKeyHex() });
    const currentHex = adrKeyHex();
    secret.put({ key: currentHex });
    secret.delete(1);

    const file = render(secret);

    expect(JSON.parse(file)).toEqual({ current: 2, keys: { '2': currentHex }, createdAt: createdAtOf(2) });
    expect(secret.reads.some((path) => path.endsWith('?version=1'))).toBe(false);
    expect(parseKeyFile(file).current.kekVersion).toBe(2);
  });

  test('a destroyed version and a deleted middle version are both left out; the rest stay', () => {
    const secret = kekSecret();
    const keys = [adrKeyHex(), adrKeyHex(), adrKeyHex(), adrKeyHex()];
    for (const key of keys) secret.put({ key });
    secret.destroy(1);
    secret.delete(3);

    expect(JSON.parse(render(secret))).toEqual({
      current: 4,
      keys: { '2': keys[1], '4': keys[3] },
      createdAt: createdAtOf(2, 4),
    });
  });

  test('versions 10 and up sort before 2 in Go map order; the file is still one well-formed keyring', () => {
    const secret = new VaultKvStandIn('kv-dev', 'provisioning_secret_enc_key', 20);
    const keys = Array.from({ length: 11 }, adrKeyHex);
    for (const key of keys) secret.put({ key });

    const file = render(secret);

    expect(Object.keys(keysOf(file))).toHaveLength(11);
    expect(parseKeyFile(file).current.kekVersion).toBe(11);
  });

  test('versions purged by max_versions are gone from the file: rewrap before rotating past it', () => {
    const secret = new VaultKvStandIn('kv-dev', 'provisioning_secret_enc_key', 2);
    secret.put({ key: adrKeyHex() });
    secret.put({ key: adrKeyHex() });
    secret.put({ key: adrKeyHex() });

    expect(Object.keys(keysOf(render(secret)))).toEqual(['2', '3']);
  });

  test('the file is exactly one JSON line: no stray white space from the template', () => {
    const secret = kekSecret();
    secret.put({ key: adrKeyHex() });

    const file = render(secret);

    expect(file).toMatch(
      /^\{"current": 1, "keys": \{"1":"[0-9A-F]{64}"\}, "createdAt": \{"1":"2026-01-01T00:00:01\.000000000Z"\}\}\n$/,
    );
  });

  test('the template reads only the two paths the Vault policy grants', () => {
    const secret = kekSecret();
    secret.put({ key: adrKeyHex() });
    secret.put({ key: adrKeyHex() });
    render(secret);

    const policy = readFileSync(join(REPO_ROOT, 'vault', 'provsec-policy.hcl'), 'utf8');
    const grantedPaths = [...policy.matchAll(/^path "([^"]+)"/gm)].map((match) => match[1]);
    const readPaths = new Set(secret.reads.map((path) => path.split('?')[0]));
    expect([...readPaths].sort()).toEqual([...grantedPaths].sort());
  });
});

describe('the rendered file fails closed when Vault holds something wrong', () => {
  test('a deleted current version yields a file the service refuses (it keeps its last good keyring)', () => {
    const secret = kekSecret();
    secret.put({ key: adrKeyHex() });
    secret.put({ key: adrKeyHex() });
    secret.delete(2);

    const file = render(secret);

    expect(JSON.parse(file)).toMatchObject({ current: 2 });
    expect(() => parseKeyFile(file)).toThrow(/current version 2 is not among its keys/);
  });

  test('delete_version_after on the mount (every version has a deletion_time) renders "keys": null, and the refusal names that cause', () => {
    const secret = kekSecret();
    secret.put({ key: adrKeyHex() });
    secret.put({ key: adrKeyHex() });
    // delete_version_after gives each version a deletion_time as it is written: the template skips them all.
    secret.delete(1);
    secret.delete(2);

    const file = render(secret);

    expect(JSON.parse(file)).toEqual({ current: 2, keys: null, createdAt: null });
    expect(() => parseKeyFile(file)).toThrow(
      /the key file holds no key \("keys": null\).*delete_version_after on the KV mount or on the secret/,
    );
  });

  test('a version written without the "key" field stops the render instead of writing an empty key', () => {
    const secret = kekSecret();
    secret.put({ kek: adrKeyHex() });

    expect(() => render(secret)).toThrow(/no entry for key "key"/);
  });

  test('a key that is not 64 hex digits renders, and the service refuses the file', () => {
    const secret = kekSecret();
    secret.put({ key: 'secret' });

    expect(() => parseKeyFile(render(secret))).toThrow(/64 hex digits|hexadecimal/);
  });

  test('before Vault has answered, the template writes nothing', () => {
    expect(renderAgentTemplate(template, () => null)).toBe('');
  });
});

describe('the evaluator refuses what it does not implement, rather than guessing', () => {
  const vaultNumber = () => ({ Data: { n: new JsonNumber('3') } });
  test.each([
    ['{{ if .x }}a{{ else }}b{{ end }}', /else/],
    ['{{ index . "key" }}', /function index/],
    ['{{/* note */}}', /comments/],
    // Vault's numbers are json.Number: %d would print "%!d(json.Number=3)" in Go.
    ['{{ with secret "x" }}{{ printf "%d" .Data.n }}{{ end }}', /printf %d of a json.Number/],
  ])('%s', (source, message) => {
    expect(() => renderAgentTemplate(source, vaultNumber)).toThrow(TemplateSubsetError);
    expect(() => renderAgentTemplate(source, vaultNumber)).toThrow(message);
  });
});

// The only check behind the evaluator above: Go's real text/template on the same data. CI installs Go
// (.ci/run) and may not skip it; a local run without Go skips it and says so.
const goAvailable = toolAvailable('go', "k8s-agent-template: the cross-check against Go's text/template");
(goAvailable ? describe : describe.skip)("Go's text/template renders the same bytes as the evaluator", () => {
  let workDir = '';
  let renderer = '';
  beforeAll(() => {
    workDir = mkdtempSync(join(tmpdir(), 'provsec-go-template-'));
    renderer = join(workDir, 'render');
    execFileSync('go', ['build', '-o', renderer, join(__dirname, 'go-template', 'render.go')], {
      stdio: 'pipe',
      timeout: 120_000,
      env: { ...process.env, GOFLAGS: '-mod=mod', GO111MODULE: 'off' },
    });
    writeFileSync(join(workDir, 'template'), template);
  }, 150_000);
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  function renderWithGo(secret: VaultKvStandIn): { status: number | null; stdout: string; stderr: string } {
    const fixture = join(workDir, 'fixture.json');
    writeFileSync(fixture, goJson(secret.responsesByPath()));
    const result = spawnSync(renderer, [join(workDir, 'template'), fixture], { encoding: 'utf8' });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  const scenarios: [string, (secret: VaultKvStandIn) => void][] = [
    ['one version', (secret) => void secret.put({ key: adrKeyHex() })],
    ['a rotation', (secret) => [adrKeyHex(), adrKeyHex()].forEach((key) => secret.put({ key }))],
    [
      'a retired and a destroyed version',
      (secret) => {
        [adrKeyHex(), adrKeyHex(), adrKeyHex()].forEach((key) => secret.put({ key }));
        secret.delete(1);
        secret.destroy(2);
      },
    ],
    ['eleven versions', (secret) => Array.from({ length: 11 }, adrKeyHex).forEach((key) => secret.put({ key }))],
  ];
  test.each(scenarios)('%s', (_name, arrange) => {
    const secret = new VaultKvStandIn('kv-dev', 'provisioning_secret_enc_key', 20);
    arrange(secret);

    const go = renderWithGo(secret);

    expect(go.stderr).toBe('');
    expect(go.status).toBe(0);
    expect(go.stdout).toBe(render(secret));
  });

  test('both refuse a version without the "key" field', () => {
    const secret = kekSecret();
    secret.put({ kek: adrKeyHex() });

    expect(renderWithGo(secret)).toMatchObject({
      status: 1,
      stderr: expect.stringContaining('map has no entry for key "key"'),
    });
    expect(() => render(secret)).toThrow(/no entry for key "key"/);
  });
});
