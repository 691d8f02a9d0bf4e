/**
 * Every manifest under k8s/ parses and validates against the Kubernetes API schemas (with unknown
 * fields refused), every kustomization lists files that exist, and the kustomizations render
 * (kubectl's built-in kustomize, offline) into valid objects with the overlay's choices applied.
 */
// Typed asymmetric matchers (@types/jest gives them as `any`).
import { expect } from '@jest/globals';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { readFileSync } from 'node:fs';
import { schemaProblems, strictFieldProblems } from './support/kubernetes-schema';
import { kubectlAvailable, renderKustomization } from './support/kustomize';
import {
  at,
  findObject,
  isKustomization,
  K8S_ROOT,
  loadAllManifests,
  REPO_ROOT,
  yamlFilesUnder,
  type KubeObject,
  type ManifestDocument,
} from './support/manifests';

const allDocuments = loadAllManifests();
const kubernetesObjects = allDocuments.filter((document) => !isKustomization(document.object));
const kustomizationFiles = yamlFilesUnder(K8S_ROOT).filter((path) => /kustomization\.ya?ml$/.test(path));

const RENDERED = ['base', 'overlays/example', 'overlays/example-rewrap', 'examples/cert-worker'];
const rendered = new Map<string, ManifestDocument[]>(
  kubectlAvailable ? RENDERED.map((folder) => [folder, renderKustomization(folder)]) : [],
);

/** The service Deployment with `readOnlyRootFilesystem` misspelt: the strict check must catch it. */
const CANARY_SOURCE = 'canary(misspelt readOnlyRootFilesystem)';
function misspeltDeployment(): KubeObject {
  const deployment = structuredClone(findObject(allDocuments, 'Deployment', 'provsec'));
  at<Record<string, unknown>[]>(deployment, 'spec.template.spec.containers')[0]!.securityContext = {
    readOnlyRootFileSystem: true,
  };
  return deployment;
}

// One TypeScript program for every document (files, renders, canary): building it is the slow part.
let strictProblems: string[] | undefined;
function strictProblemsFor(selectSource: (source: string) => boolean): string[] {
  strictProblems ??= strictFieldProblems([
    ...kubernetesObjects,
    ...[...rendered.values()].flat(),
    { source: CANARY_SOURCE, object: misspeltDeployment() },
  ]);
  return strictProblems.filter((problem) => selectSource(problem.slice(0, problem.indexOf(': '))));
}

const KUSTOMIZATION_FIELDS = new Set([
  'apiVersion',
  'kind',
  'resources',
  'components',
  'namespace',
  'images',
  'configMapGenerator',
  'labels',
  'patches',
  'replicas',
  'generatorOptions',
]);
describe('every manifest file under k8s/', () => {
  test('parses as YAML into objects that each name an apiVersion, kind and name', () => {
    expect(kubernetesObjects.length).toBeGreaterThanOrEqual(16);
    for (const { source, object } of kubernetesObjects) {
      expect({
        source,
        apiVersion: typeof object.apiVersion,
        kind: typeof object.kind,
        name: typeof object.metadata?.name,
      }).toEqual({ source, apiVersion: 'string', kind: 'string', name: 'string' });
    }
  });

  test('validates against the Kubernetes schema of its kind', () => {
    const problems = kubernetesObjects.flatMap(({ source, object }) =>
      schemaProblems(object).map((problem) => `${source}: ${problem}`),
    );
    expect(problems).toEqual([]);
  });

  test('uses no field the Kubernetes API does not define (a typo would otherwise be ignored silently)', () => {
    expect(strictProblemsFor((source) => !source.startsWith('kustomize(') && source !== CANARY_SOURCE)).toEqual([]);
  });

  test('the strict check catches a misspelt security field that the schema check lets through', () => {
    expect(strictProblemsFor((source) => source === CANARY_SOURCE).join('\n')).toMatch(/readOnlyRootFileSystem/);
    expect(schemaProblems(misspeltDeployment())).toEqual([]);
  });

  test('commits no Secret object: database URLs are created in the cluster, never kept here', () => {
    expect(kubernetesObjects.filter(({ object }) => object.kind === 'Secret').map(({ source }) => source)).toEqual([]);
  });
});

describe('every kustomization', () => {
  test.each(kustomizationFiles.map((path) => [path.slice(REPO_ROOT.length + 1), path]))(
    '%s lists only files that exist and known fields',
    (_name, path) => {
      const kustomization = parseYaml(readFileSync(path, 'utf8')) as Record<string, unknown>;
      expect(Object.keys(kustomization).filter((field) => !KUSTOMIZATION_FIELDS.has(field))).toEqual([]);
      const folder = dirname(path);
      const listed = [
        ...((kustomization.resources as string[] | undefined) ?? []),
        ...((kustomization.components as string[] | undefined) ?? []),
        ...((kustomization.configMapGenerator as { envs?: string[]; files?: string[] }[] | undefined) ?? []).flatMap(
          (generator) => [...(generator.envs ?? []), ...(generator.files ?? [])],
        ),
      ];
      expect(listed.filter((entry) => !existsSync(join(folder, entry)))).toEqual([]);
    },
  );

  test('the base lists every manifest file in its folder', () => {
    const base = parseYaml(readFileSync(join(K8S_ROOT, 'base', 'kustomization.yaml'), 'utf8')) as {
      resources: string[];
    };
    const manifestFiles = yamlFilesUnder(join(K8S_ROOT, 'base'))
      .map((path) => path.slice(join(K8S_ROOT, 'base').length + 1))
      .filter((name) => name !== 'kustomization.yaml');
    expect([...base.resources].sort()).toEqual(manifestFiles.sort());
  });
});

(kubectlAvailable ? describe : describe.skip)('the rendered kustomizations (kubectl kustomize, offline)', () => {
  const renderedObjects = (folder: string): KubeObject[] => rendered.get(folder)!.map((document) => document.object);

  test.each(RENDERED)('%s renders into objects that pass the schema and strict-field checks', (folder) => {
    const documents = rendered.get(folder)!;
    expect(
      documents.flatMap(({ source, object }) => schemaProblems(object).map((problem) => `${source}: ${problem}`)),
    ).toEqual([]);
    expect(strictProblemsFor((source) => source.startsWith(`kustomize(${folder})#`))).toEqual([]);
  });

  test('the base generates the env and policy ConfigMaps and every reference to them follows the hashed names', () => {
    const objects = renderedObjects('base');
    const configMapNames = objects
      .filter((object) => object.kind === 'ConfigMap')
      .map((object) => object.metadata.name);
    expect(configMapNames).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^provsec-env-[a-z0-9]+$/),
        expect.stringMatching(/^provsec-auth-policy-[a-z0-9]+$/),
      ]),
    );
    const text = JSON.stringify(objects.filter((object) => object.kind !== 'ConfigMap'));
    expect(text).not.toMatch(/"name":"provsec-env"/);
    expect(text).not.toMatch(/"name":"provsec-auth-policy"/);
  });

  test('the example overlay puts everything in its namespace, with its image, autoscaling bounds and Vault namespace', () => {
    const objects = renderedObjects('overlays/example');
    const namespaced = objects.filter((object) => object.kind !== 'Namespace');
    expect(new Set(namespaced.map((object) => object.metadata.namespace))).toEqual(new Set(['provsec']));
    const images = objects
      .flatMap((object) => [
        ...(at<{ image: string }[]>(object, 'spec.template.spec.containers') ?? []),
        ...(at<{ image: string }[]>(object, 'spec.template.spec.initContainers') ?? []),
      ])
      .map((container) => container.image);
    expect(new Set(images)).toEqual(new Set(['registry.example.com/iot/provsec:0.1.0']));
    const autoscaler = objects.find((object) => object.kind === 'HorizontalPodAutoscaler')!;
    expect(at(autoscaler, 'spec.minReplicas')).toBe(3);
    expect(at(autoscaler, 'spec.maxReplicas')).toBe(8);
    const deployment = objects.find((object) => object.kind === 'Deployment')!;
    expect(
      at<Record<string, string>>(deployment, 'spec.template.metadata.annotations')['vault.hashicorp.com/namespace'],
    ).toBe('ns_dev/ns_wcm_infra/ac_access_control');
    const env = objects.find(
      (object) => object.kind === 'ConfigMap' && object.metadata.name.startsWith('provsec-env-'),
    )!;
    expect(at<Record<string, string>>(env, 'data')).toMatchObject({
      AUTH_ISSUER: expect.stringMatching(/^https:\/\//),
      AUTH_JWKS_URL: expect.stringMatching(/\/openid\/v1\/jwks$/),
      AUTH_AUDIENCE: 'provsec',
    });
  });

  test("the rewrap overlay adds only the Job and its network policy, with the service's image, ConfigMap and Vault namespace", () => {
    const service = renderedObjects('overlays/example');
    const withRewrap = renderedObjects('overlays/example-rewrap');
    const key = (object: KubeObject): string => `${object.kind}/${object.metadata.name}`;
    expect(
      withRewrap
        .map(key)
        .filter((name) => !service.map(key).includes(name))
        .sort(),
    ).toEqual(['Job/provsec-rewrap', 'NetworkPolicy/provsec-rewrap']);
    const job = withRewrap.find((object) => key(object) === 'Job/provsec-rewrap')!;
    const serviceEnv = service.find(
      (object) => object.kind === 'ConfigMap' && object.metadata.name.startsWith('provsec-env-'),
    )!;
    const container = at<{ image: string; envFrom: { configMapRef: { name: string } }[] }[]>(
      job,
      'spec.template.spec.containers',
    )[0]!;
    expect(job.metadata.namespace).toBe('provsec');
    expect(container.image).toBe('registry.example.com/iot/provsec:0.1.0');
    expect(container.envFrom[0]!.configMapRef.name).toBe(serviceEnv.metadata.name);
    expect(at<Record<string, string>>(job, 'spec.template.metadata.annotations')['vault.hashicorp.com/namespace']).toBe(
      'ns_dev/ns_wcm_infra/ac_access_control',
    );
  });
});
