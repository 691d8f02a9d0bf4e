/**
 * VAULT_AUTH=kubernetes logs in with a token Vault's role accepts: vault/setup.sh binds the role to
 * audience `vault`, and the plugin refuses any other audience with 403, so the default token file
 * is a projected token for `vault` (not the automounted one, whose audience is the API server, and
 * which the manifests turn off). The docs show the volume and mount that put it there.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config';
import { REPO_ROOT } from './support/manifests';

const deployGuide = readFileSync(join(REPO_ROOT, 'docs', 'deploy.md'), 'utf8');
const keySourcesGuide = readFileSync(join(REPO_ROOT, 'docs', 'key-sources.md'), 'utf8');
const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const setupScript = readFileSync(join(REPO_ROOT, 'vault', 'setup.sh'), 'utf8');

const defaultTokenFile = () => {
  const config = loadConfig({
    KEY_SOURCE: 'vault',
    VAULT_ADDR: 'http://127.0.0.1:8200',
    VAULT_AUTH: 'kubernetes',
    VAULT_K8S_ROLE: 'provsec',
  });
  if (config.keySource.kind !== 'vault') throw new Error('expected the vault key source');
  return config.keySource.kubernetesTokenFile;
};

interface PodSpecSnippet {
  automountServiceAccountToken?: boolean;
  containers: { name: string; volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[] }[];
  volumes: {
    name: string;
    projected?: {
      sources: { serviceAccountToken?: { path: string; audience?: string; expirationSeconds?: number } }[];
    };
  }[];
}

/** The pod-spec snippet docs/deploy.md shows for VAULT_AUTH=kubernetes (the ```yaml block naming VAULT_AUTH). */
function documentedPodSpec(): PodSpecSnippet {
  const block = [...deployGuide.matchAll(/```yaml\n([\s\S]*?)```/g)]
    .map((match) => match[1]!)
    .find((yaml) => yaml.includes('VAULT_AUTH'));
  if (block === undefined) throw new Error('docs/deploy.md shows no pod spec for VAULT_AUTH=kubernetes');
  return parseYaml(block) as PodSpecSnippet;
}

describe('VAULT_AUTH=kubernetes token', () => {
  test('the default VAULT_K8S_TOKEN_FILE is a projected token path, not the automounted service-account token', () => {
    expect(defaultTokenFile()).toBe('/var/run/secrets/vault/token');
  });

  test('docs/deploy.md mounts a projected token for audience vault, short-lived, where the default reads it, with automount off', () => {
    const spec = documentedPodSpec();
    expect(spec.automountServiceAccountToken).toBe(false);
    const mount = spec.containers
      .flatMap((container) => container.volumeMounts ?? [])
      .find((candidate) => candidate.mountPath === dirname(defaultTokenFile()));
    expect(mount).toMatchObject({ readOnly: true });
    const token = spec.volumes.find((volume) => volume.name === mount?.name)?.projected?.sources[0]
      ?.serviceAccountToken;
    expect(token?.path).toBe('token');
    // The audience the role is bound to by vault/setup.sh.
    expect(token?.audience).toBe('vault');
    expect(setupScript).toMatch(/^: "\$\{TOKEN_AUDIENCE:=vault\}"/m);
    expect(setupScript).toContain('audience="$TOKEN_AUDIENCE"');
    // Short-lived: the kubelet refreshes it at 80 % of its life; 10 minutes is Kubernetes' minimum.
    expect(token?.expirationSeconds).toBeGreaterThanOrEqual(600);
    expect(token?.expirationSeconds).toBeLessThanOrEqual(3600);
  });

  test('the README and docs/key-sources.md name the same default', () => {
    for (const text of [readme, keySourcesGuide]) {
      expect(text).toContain(defaultTokenFile());
      expect(text).not.toContain('/var/run/secrets/kubernetes.io/serviceaccount/token');
    }
  });
});
