/**
 * The Vault Agent injector annotations: every key is one the injector accepts (the list read from
 * hashicorp/vault-k8s, vendored in test/fixtures/reference), and their values give what the service needs: a
 * key file in the keyring form, readable only by the service's group, kept current by a sidecar.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  at,
  findObject,
  K8S_ROOT,
  loadManifestFile,
  REPO_ROOT,
  yamlFilesUnder,
  type KubeObject,
} from './support/manifests';

const REFERENCE = join(REPO_ROOT, 'test', 'fixtures', 'reference', 'vault-injector-annotations.txt');
const PREFIX = 'vault.hashicorp.com/';
const SECRET_NAME = 'provisioning-key';

const deployment = findObject(loadManifestFile(join(K8S_ROOT, 'base', 'deployment.yaml')), 'Deployment', 'provsec');
const rewrapJob = findObject(
  loadManifestFile(join(K8S_ROOT, 'components', 'rewrap-job', 'job.yaml')),
  'Job',
  'provsec-rewrap',
);
const migrateJob = findObject(loadManifestFile(join(K8S_ROOT, 'base', 'migrate-job.yaml')), 'Job', 'provsec-migrate');

const podAnnotations = (object: KubeObject): Record<string, string> =>
  at<Record<string, string>>(object, 'spec.template.metadata.annotations') ?? {};
const podSpec = (object: KubeObject): Record<string, unknown> =>
  at<Record<string, unknown>>(object, 'spec.template.spec');
const serviceContainer = at<
  {
    name: string;
    env: { name: string; value?: string }[];
    volumeMounts: { name: string }[];
    securityContext: { runAsGroup: number; runAsUser: number };
  }[]
>(deployment, 'spec.template.spec.containers')[0]!;
const envValue = (name: string): string | undefined => serviceContainer.env.find((entry) => entry.name === name)?.value;

/** Go duration strings as the agent parses them ("1m", "90s", or bare seconds). */
function durationSeconds(text: string): number {
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$|^(\d+)$/.exec(text);
  if (!match || text === '') throw new Error(`not a duration: ${text}`);
  const [, hours = '0', minutes = '0', seconds = '0', bare] = match;
  return bare !== undefined ? Number(bare) : Number(hours) * 3600 + Number(minutes) * 60 + Number(seconds);
}

describe('every vault.hashicorp.com/ annotation key is one the injector accepts', () => {
  test('the reference list from hashicorp/vault-k8s is present beside the repository', () => {
    expect(existsSync(REFERENCE)).toBe(true);
  });

  const reference = existsSync(REFERENCE)
    ? readFileSync(REFERENCE, 'utf8')
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line.startsWith(PREFIX))
    : [];
  const exactKeys = new Set(reference.filter((line) => !line.endsWith('-')));
  const prefixes = reference.filter((line) => line.endsWith('-'));
  const isAccepted = (key: string): boolean =>
    exactKeys.has(key) || prefixes.some((prefix) => key.startsWith(prefix) && key.length > prefix.length);

  // Read from the text, so keys inside kustomize patches ("vault.hashicorp.com~1namespace") and in
  // the deployment guide are checked too, not only those in parsed annotations.
  const scannedFiles = [...yamlFilesUnder(K8S_ROOT), join(REPO_ROOT, 'docs', 'deploy.md')].filter((path) =>
    existsSync(path),
  );
  const usedKeys = [
    ...new Set(
      scannedFiles.flatMap((path) =>
        [...readFileSync(path, 'utf8').matchAll(/vault\.hashicorp\.com(?:\/|~1)([a-z0-9-]+)/g)].map(
          (match) => `${PREFIX}${match[1]}`,
        ),
      ),
    ),
  ].sort();

  test('the manifests use the injector (more than a handful of keys to check)', () => {
    expect(usedKeys.length).toBeGreaterThan(20);
  });

  test.each(usedKeys)('%s', (key) => {
    expect(isAccepted(key)).toBe(true);
  });

  test('the check itself rejects a misspelt key and a bare prefix', () => {
    expect(isAccepted('vault.hashicorp.com/agent-inject-secrets-provisioning-key')).toBe(false);
    expect(isAccepted('vault.hashicorp.com/agent-inject-secret-')).toBe(false);
    expect(isAccepted('vault.hashicorp.com/agent-inject-secret-provisioning-key')).toBe(true);
  });
});

describe('the service pod gets its key file from a Vault Agent sidecar', () => {
  const annotations = podAnnotations(deployment);

  test('injection is on, with the Vault role the setup script creates', () => {
    const setupScript = readFileSync(join(REPO_ROOT, 'vault', 'setup.sh'), 'utf8');
    expect(annotations[`${PREFIX}agent-inject`]).toBe('true');
    expect(setupScript).toContain(`: "\${VAULT_ROLE:=${annotations[`${PREFIX}role`]}}"`);
    expect(setupScript).toContain(`: "\${K8S_SERVICE_ACCOUNT:=${podSpec(deployment).serviceAccountName as string}}"`);
  });

  test("the secret is the ADR's KV v2 path and lands where KEY_FILE points", () => {
    expect(annotations[`${PREFIX}agent-inject-secret-${SECRET_NAME}`]).toBe('kv-dev/data/provisioning_secret_enc_key');
    expect(annotations[`${PREFIX}agent-inject-file-${SECRET_NAME}`]).toBeUndefined();
    expect(annotations[`${PREFIX}secret-volume-path`] ?? '/vault/secrets').toBe('/vault/secrets');
    expect(envValue('KEY_SOURCE')).toBe('file');
    expect(envValue('KEY_FILE')).toBe(`/vault/secrets/${SECRET_NAME}`);
  });

  test('a custom template renders it, and a missing key field is an error rather than an empty key', () => {
    expect(annotations[`${PREFIX}agent-inject-template-${SECRET_NAME}`]).toContain('scratch.MapSet "keys"');
    expect(annotations[`${PREFIX}error-on-missing-key-${SECRET_NAME}`]).toBe('true');
  });

  test("the file is 0440 and its group is the service's own (the pod fsGroup), not readable by others", () => {
    const permissions = annotations[`${PREFIX}agent-inject-perms-${SECRET_NAME}`]!;
    expect(['0400', '0440']).toContain(permissions);
    const agentGroup = Number(annotations[`${PREFIX}agent-run-as-group`]);
    const securityContext = podSpec(deployment).securityContext as { fsGroup: number; runAsGroup: number };
    expect(agentGroup).toBe(securityContext.fsGroup);
    expect(agentGroup).toBe(serviceContainer.securityContext.runAsGroup);
    // The agent writes as another user, so the service can read the key but not rewrite it.
    expect(Number(annotations[`${PREFIX}agent-run-as-user`])).not.toBe(serviceContainer.securityContext.runAsUser);
    expect(Number(annotations[`${PREFIX}agent-run-as-user`])).toBeGreaterThan(0);
    expect(annotations[`${PREFIX}agent-set-security-context`]).toBe('true');
  });

  test('the agent pre-populates before the service starts and stays as a sidecar to re-render', () => {
    expect(annotations[`${PREFIX}agent-pre-populate`]).toBe('true');
    expect(annotations[`${PREFIX}agent-pre-populate-only`]).toBe('false');
    expect(annotations[`${PREFIX}agent-inject-containers`]).toBe(serviceContainer.name);
  });

  test('a rotated KEK reaches the pods in about a minute (KV secrets are re-read on this interval)', () => {
    expect(durationSeconds(annotations[`${PREFIX}template-static-secret-render-interval`]!)).toBeLessThanOrEqual(60);
    expect(durationSeconds(annotations[`${PREFIX}template-static-secret-render-interval`]!)).toBeGreaterThanOrEqual(15);
  });

  test('a Vault outage does not make the sidecar exit (an exited sidecar would take the pod out of the Service)', () => {
    expect(annotations[`${PREFIX}template-config-exit-on-retry-failure`]).toBe('false');
    expect(annotations[`${PREFIX}agent-auto-auth-exit-on-err`] ?? 'false').toBe('false');
  });

  test('the agent has resource requests and limits', () => {
    for (const name of ['agent-requests-cpu', 'agent-requests-mem', 'agent-limits-cpu', 'agent-limits-mem']) {
      expect(annotations[`${PREFIX}${name}`]).toMatch(/^\d+(m|Mi|Gi)?$/);
    }
  });

  test('the Vault token stays in the agent: not written to the shared volume', () => {
    expect(annotations[`${PREFIX}agent-inject-token`]).toBe('false');
  });

  test('the agent logs in with its own short-lived Vault-audience token that the service container does not mount', () => {
    const volumeName = annotations[`${PREFIX}agent-service-account-token-volume-name`]!;
    const volumes = podSpec(deployment).volumes as {
      name: string;
      projected?: {
        sources: { serviceAccountToken?: { audience: string; expirationSeconds: number; path: string } }[];
      };
    }[];
    const tokenSource = volumes.find((volume) => volume.name === volumeName)?.projected?.sources[0]
      ?.serviceAccountToken;
    expect(tokenSource).toMatchObject({ audience: 'vault', path: 'token' });
    expect(tokenSource!.expirationSeconds).toBeLessThanOrEqual(3600);
    expect(serviceContainer.volumeMounts.map((mount) => mount.name)).not.toContain(volumeName);
    expect(podSpec(deployment).automountServiceAccountToken).toBe(false);
    expect(readFileSync(join(REPO_ROOT, 'vault', 'setup.sh'), 'utf8')).toContain(
      `: "\${TOKEN_AUDIENCE:=${tokenSource!.audience}}"`,
    );
  });
});

describe('the Jobs', () => {
  test('the rewrap Job renders the very same key file, once, without a sidecar that would keep it running', () => {
    const jobAnnotations = podAnnotations(rewrapJob);
    const serviceAnnotations = podAnnotations(deployment);
    for (const key of ['agent-inject-template', 'agent-inject-secret', 'agent-inject-perms', 'error-on-missing-key']) {
      expect(jobAnnotations[`${PREFIX}${key}-${SECRET_NAME}`]).toBe(
        serviceAnnotations[`${PREFIX}${key}-${SECRET_NAME}`],
      );
    }
    expect(jobAnnotations[`${PREFIX}role`]).toBe(serviceAnnotations[`${PREFIX}role`]);
    expect(jobAnnotations[`${PREFIX}agent-pre-populate-only`]).toBe('true');
    // A one-off Job fails visibly instead of waiting for Vault forever.
    expect(jobAnnotations[`${PREFIX}template-config-exit-on-retry-failure`]).toBe('true');
  });

  test('the migration Job never gets a Vault Agent (it needs no key) and runs under its own service account', () => {
    expect(podAnnotations(migrateJob)[`${PREFIX}agent-inject`]).toBe('false');
    expect(podSpec(migrateJob).serviceAccountName).toBe('provsec-migrate');
  });
});
