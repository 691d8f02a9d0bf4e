/**
 * The workloads' hardening and wiring: security contexts, probes, drain time, where credentials
 * come from, what the network policy allows, and that configuration names match what the service
 * reads (src/config.ts) and the policy validates (src/auth).
 */
// Typed asymmetric matchers (@types/jest gives them as `any`).
import { expect } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AccessPolicy } from '../../src/auth/access-policy';
import {
  at,
  findObject,
  isKustomization,
  K8S_ROOT,
  loadAllManifests,
  REPO_ROOT,
  type KubeObject,
} from './support/manifests';

interface Container {
  name: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  envFrom?: { configMapRef?: { name: string } }[];
  ports?: { name: string; containerPort: number }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  startupProbe?: { httpGet?: { path: string; port: string | number } };
  lifecycle?: { preStop?: { sleep?: { seconds: number } } };
}
interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
  securityContext?: Record<string, unknown>;
  containers: Container[];
  initContainers?: Container[];
  volumes?: { name: string; emptyDir?: unknown; configMap?: { name: string }; projected?: unknown }[];
}
interface NetworkPolicyPeer {
  namespaceSelector?: { matchLabels?: Record<string, string> };
  podSelector?: { matchLabels?: Record<string, string> };
  ipBlock?: { cidr: string };
}
interface NetworkPolicyRule {
  from?: NetworkPolicyPeer[];
  to?: NetworkPolicyPeer[];
  ports?: { protocol: string; port: number }[];
}

const objects = loadAllManifests()
  .map((document) => document.object)
  .filter((object) => !isKustomization(object));
const workloads = objects.filter((object) => object.kind === 'Deployment' || object.kind === 'Job');
const podSpecOf = (object: KubeObject): PodSpec => at<PodSpec>(object, 'spec.template.spec');
const deployment = findObject(loadAllManifests(), 'Deployment', 'provsec');
const pod = podSpecOf(deployment);
const service = pod.containers[0]!;
const envValue = (container: Container, name: string): string | undefined =>
  container.env?.find((entry) => entry.name === name)?.value;
const envFile = Object.fromEntries(
  readFileSync(join(K8S_ROOT, 'base', 'provsec.env'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
) as Record<string, string>;
const podLabels = at<Record<string, string>>(deployment, 'spec.template.metadata.labels');
const selects = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([key, value]) => labels[key] === value);

describe.each(workloads.map((object) => [`${object.kind}/${object.metadata.name}`, object] as const))(
  '%s runs locked down',
  (_name, workload) => {
    const spec = podSpecOf(workload);
    const containers = [...spec.containers, ...(spec.initContainers ?? [])];

    test("the pod runs as a numeric non-root user and group, under the runtime's default seccomp profile", () => {
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(spec.securityContext?.runAsUser).toEqual(expect.any(Number));
      expect(spec.securityContext?.runAsUser).toBeGreaterThan(0);
      expect(spec.securityContext?.runAsGroup).toBeGreaterThan(0);
    });

    test('no Kubernetes API token is mounted by default', () => {
      expect(spec.automountServiceAccountToken).toBe(false);
    });

    test.each(containers.map((container) => [container.name, container] as const))(
      'container %s: read-only root, no privilege escalation, no capabilities, bounded memory',
      (_container, container) => {
        expect(container.securityContext).toMatchObject({
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          capabilities: { drop: ['ALL'] },
        });
        expect(container.securityContext?.privileged ?? false).toBe(false);
        expect(container.securityContext?.capabilities).not.toHaveProperty('add');
        expect(container.resources?.requests?.memory).toBeDefined();
        expect(container.resources?.limits?.memory).toBeDefined();
      },
    );
  },
);

describe('the service Deployment', () => {
  test("its container runs as the image's user 65532 and writes only to a /tmp emptyDir", () => {
    expect(service.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const tmp = service.volumeMounts!.find((mount) => mount.mountPath === '/tmp')!;
    expect(pod.volumes!.find((volume) => volume.name === tmp.name)).toHaveProperty('emptyDir');
    const writableMounts = service.volumeMounts!.filter((mount) => !mount.readOnly).map((mount) => mount.mountPath);
    expect(writableMounts).toEqual(['/tmp']);
  });

  test('liveness asks /healthz and readiness asks /readyz, over HTTPS on the service port 8443', () => {
    expect(service.ports).toEqual([expect.objectContaining({ name: 'https', containerPort: 8443 })]);
    expect(service.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'https', scheme: 'HTTPS' });
    expect(service.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'https', scheme: 'HTTPS' });
    expect(service.startupProbe?.httpGet).toEqual({ path: '/healthz', port: 'https', scheme: 'HTTPS' });
  });

  test('the kubelet waits longer than the pre-stop pause plus the drain timeout before killing a pod', () => {
    const drainMs = Number(envValue(service, 'SHUTDOWN_TIMEOUT_MS'));
    const preStopMs = (service.lifecycle?.preStop?.sleep?.seconds ?? 0) * 1000;
    expect(drainMs).toBeGreaterThan(0);
    expect(pod.terminationGracePeriodSeconds! * 1000).toBeGreaterThan(drainMs + preStopMs);
  });

  test('production settings are fixed on the container, where an edit to the ConfigMap cannot undo them', () => {
    expect(envValue(service, 'NODE_ENV')).toBe('production');
    expect(envValue(service, 'KEY_SOURCE')).toBe('file');
    expect(envValue(service, 'MIGRATE_ON_START')).toBe('false');
    for (const fixed of ['NODE_ENV', 'KEY_SOURCE', 'KEY_FILE', 'MIGRATE_ON_START', 'SHUTDOWN_TIMEOUT_MS'])
      expect(envFile).not.toHaveProperty(fixed);
  });

  test('the database URL comes from a Secret reference, never a literal', () => {
    const databaseUrl = service.env!.find((entry) => entry.name === 'DATABASE_URL')!;
    expect(databaseUrl.value).toBeUndefined();
    expect(databaseUrl.valueFrom?.secretKeyRef).toEqual({ name: 'provsec-database', key: 'url' });
  });

  test('no literal setting anywhere looks like a credential (a URL with a password, a 64-hex key, a JWT)', () => {
    const literals = [
      ...Object.values(envFile),
      ...workloads.flatMap((workload) =>
        [...podSpecOf(workload).containers, ...(podSpecOf(workload).initContainers ?? [])].flatMap((container) =>
          (container.env ?? []).map((entry) => entry.value ?? ''),
        ),
      ),
    ];
    expect(
      literals.filter((value) => /:\/\/[^/\s]*:[^/\s]*@|\b[0-9a-fA-F]{64}\b|eyJ[A-Za-z0-9_-]+\./.test(value)),
    ).toEqual([]);
  });

  test('no replica count on the Deployment: the autoscaler owns it and keeps at least two', () => {
    const autoscaler = findObject(loadAllManifests(), 'HorizontalPodAutoscaler', 'provsec');
    expect(at(deployment, 'spec.replicas')).toBeUndefined();
    expect(at(autoscaler, 'spec.scaleTargetRef')).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: 'provsec',
    });
    expect(at<number>(autoscaler, 'spec.minReplicas')).toBeGreaterThanOrEqual(2);
    expect(at(deployment, 'spec.strategy.rollingUpdate.maxUnavailable')).toBe(0);
  });

  test('the disruption budget and the Service select exactly the service pods', () => {
    const budget = findObject(loadAllManifests(), 'PodDisruptionBudget', 'provsec');
    const kubeService = findObject(loadAllManifests(), 'Service', 'provsec');
    expect(selects(at(budget, 'spec.selector.matchLabels'), podLabels)).toBe(true);
    expect(at(budget, 'spec.maxUnavailable')).toBe(1);
    expect(at(kubeService, 'spec.selector')).toEqual(at(deployment, 'spec.selector.matchLabels'));
    expect(at(kubeService, 'spec.ports')).toEqual([
      { name: 'https', port: 443, targetPort: 'https', protocol: 'TCP', appProtocol: 'https' },
    ]);
  });
});

describe('the configuration the pods load', () => {
  const variablesTheServiceReads = new Set(
    [
      ...readFileSync(join(REPO_ROOT, 'src', 'config.ts'), 'utf8').matchAll(
        /\b(?:read|optional|required)\(\s*env,\s*'([A-Z0-9_]+)'/g,
      ),
    ].map((match) => match[1]),
  );

  test('every variable set is one src/config.ts reads (a misspelt name would be ignored silently)', () => {
    const provsecWorkloads = workloads.filter(
      (workload) => workload.metadata.labels?.['app.kubernetes.io/name'] === 'provsec',
    );
    expect(provsecWorkloads).toHaveLength(3);
    const setOnContainers = provsecWorkloads.flatMap((workload) =>
      podSpecOf(workload).containers.flatMap((container) => (container.env ?? []).map((entry) => entry.name)),
    );
    const unknown = [...Object.keys(envFile), ...setOnContainers].filter(
      (name) => !variablesTheServiceReads.has(name) && name !== 'NODE_EXTRA_CA_CERTS' && name !== 'NODE_OPTIONS',
    );
    expect(variablesTheServiceReads.size).toBeGreaterThan(20);
    expect(unknown).toEqual([]);
  });

  test('the authorization policy is valid for the service and lets the example certificate worker read secrets', () => {
    const policy = AccessPolicy.fromJson(JSON.parse(readFileSync(join(K8S_ROOT, 'base', 'auth-policy.json'), 'utf8')));
    expect(policy).toBeInstanceOf(AccessPolicy);
    const rules = (
      JSON.parse(readFileSync(join(K8S_ROOT, 'base', 'auth-policy.json'), 'utf8')) as {
        rules: { subject: string; permissions: string[] }[];
      }
    ).rules;
    expect(
      rules.find((rule) => rule.subject === 'system:serviceaccount:provisioning:cert-worker')?.permissions,
    ).toContain('provision-secret:read');
  });

  test('files named by settings are where the pod mounts them', () => {
    const mountOf = (volumeName: string): string =>
      service.volumeMounts!.find((mount) => mount.name === volumeName)!.mountPath;
    expect(envFile.AUTH_POLICY_FILE).toBe(`${mountOf('auth-policy')}/auth-policy.json`);
    expect(envValue(service, 'NODE_EXTRA_CA_CERTS')).toBe(`${mountOf('kube-ca')}/ca.crt`);
    expect(pod.volumes!.find((volume) => volume.name === 'kube-ca')?.configMap?.name).toBe('kube-root-ca.crt');
  });

  test("the token issuer's key set is its /openid/v1/jwks, and tokens are for audience provsec", () => {
    expect(envFile.AUTH_JWKS_URL).toMatch(/^https:\/\/.+\/openid\/v1\/jwks$/);
    expect(envFile.AUTH_ISSUER).toMatch(/^https:\/\//);
    expect(envFile.AUTH_AUDIENCE).toBe('provsec');
  });
});

describe('migrations and rewrap', () => {
  const migrate = findObject(loadAllManifests(), 'Job', 'provsec-migrate');
  const migrateContainer = podSpecOf(migrate).containers[0]!;

  test("the migration Job runs dist/scripts/migrate.js as the schema owner, a different Secret from the service's", () => {
    expect(migrateContainer.args).toEqual(['dist/scripts/migrate.js']);
    const url = migrateContainer.env!.find((entry) => entry.name === 'DATABASE_URL')!;
    expect(url.valueFrom?.secretKeyRef).toEqual({ name: 'provsec-database-migrate', key: 'url' });
    expect(envValue(migrateContainer, 'NODE_ENV')).toBe('production');
    expect(at(migrate, 'spec.template.spec.restartPolicy')).toBe('Never');
  });

  test("the rewrap Job runs dist/scripts/rewrap.js with the service's database role and key file", () => {
    const rewrap = podSpecOf(findObject(loadAllManifests(), 'Job', 'provsec-rewrap')).containers[0]!;
    expect(rewrap.args).toEqual(['dist/scripts/rewrap.js']);
    expect(rewrap.env!.find((entry) => entry.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef?.name).toBe(
      'provsec-database',
    );
    expect(envValue(rewrap, 'KEY_FILE')).toBe(envValue(service, 'KEY_FILE'));
  });
});

describe('the network policies', () => {
  const server = findObject(loadAllManifests(), 'NetworkPolicy', 'provsec-server');
  const ingress = at<NetworkPolicyRule[]>(server, 'spec.ingress');
  const egress = at<NetworkPolicyRule[]>(server, 'spec.egress');
  const ports = (rule: NetworkPolicyRule): string[] =>
    (rule.ports ?? []).map((port) => `${port.protocol}/${port.port}`).sort();

  test('the server policy selects the service pods and restricts both directions', () => {
    expect(selects(at(server, 'spec.podSelector.matchLabels'), podLabels)).toBe(true);
    expect(at(server, 'spec.policyTypes')).toEqual(['Ingress', 'Egress']);
  });

  test('only the management API and the certificate workers may connect, and only to the HTTPS port 8443', () => {
    expect(ingress).toHaveLength(1);
    expect(ports(ingress[0]!)).toEqual(['TCP/8443']);
    expect(ingress[0]!.from!.map((peer) => peer.podSelector?.matchLabels?.['app.kubernetes.io/name']).sort()).toEqual([
      'cert-worker',
      'management-api',
    ]);
    // Each peer names its namespace too: a pod label alone could be claimed in any namespace.
    expect(
      ingress[0]!.from!.every((peer) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name']),
    ).toBe(true);
  });

  test('the example certificate worker carries the label and namespace the policy admits', () => {
    const worker = findObject(loadAllManifests(), 'Deployment', 'cert-worker');
    const kustomization = readFileSync(join(K8S_ROOT, 'examples', 'cert-worker', 'kustomization.yaml'), 'utf8');
    const peer = ingress[0]!.from!.find(
      (candidate) => candidate.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'cert-worker',
    )!;
    expect(selects(peer.podSelector!.matchLabels!, at(worker, 'spec.template.metadata.labels'))).toBe(true);
    expect(kustomization).toMatch(
      new RegExp(`^namespace: ${peer.namespaceSelector!.matchLabels!['kubernetes.io/metadata.name']}$`, 'm'),
    );
  });

  test('egress goes to DNS, Postgres and Vault only, each on its own port, never to "anywhere"', () => {
    expect(egress.map(ports)).toEqual([['TCP/53', 'UDP/53'], ['TCP/5432'], ['TCP/8200']]);
    expect(
      egress.every((rule) => (rule.to ?? []).length > 0 && rule.to!.every((peer) => peer.podSelector?.matchLabels)),
    ).toBe(true);
  });

  test('the migration Job may reach DNS and Postgres only, and nothing may reach it', () => {
    const migrate = findObject(loadAllManifests(), 'NetworkPolicy', 'provsec-migrate');
    expect(at(migrate, 'spec.policyTypes')).toEqual(['Ingress', 'Egress']);
    expect(at(migrate, 'spec.ingress')).toBeUndefined();
    expect(at<NetworkPolicyRule[]>(migrate, 'spec.egress').map(ports)).toEqual([['TCP/53', 'UDP/53'], ['TCP/5432']]);
  });

  test("the overlay's API-server rule (for the issuer's key set) is one address on the API ports", () => {
    const apiServer = findObject(loadAllManifests(), 'NetworkPolicy', 'provsec-server-kube-apiserver');
    const rules = at<NetworkPolicyRule[]>(apiServer, 'spec.egress');
    expect(rules).toHaveLength(1);
    expect(rules[0]!.to).toEqual([{ ipBlock: { cidr: expect.stringMatching(/\/32$/) } }]);
    expect(ports(rules[0]!)).toEqual(['TCP/443', 'TCP/6443']);
  });
});

describe('the example certificate worker', () => {
  const worker = findObject(loadAllManifests(), 'Deployment', 'cert-worker');
  const volumes = podSpecOf(worker).volumes as {
    name: string;
    configMap?: { name: string };
    emptyDir?: { medium?: string };
    projected?: { sources: { serviceAccountToken?: { audience: string; expirationSeconds: number; path: string } }[] };
  }[];
  const tokenOf = (volumeName: string) =>
    volumes
      .find((volume) => volume.name === volumeName)!
      .projected!.sources.find((source) => source.serviceAccountToken)!.serviceAccountToken!;
  const token = tokenOf('provsec-token');
  const container = podSpecOf(worker).containers[0]!;
  const annotations = at<Record<string, string>>(worker, 'spec.template.metadata.annotations');
  const env = (name: string) => container.env?.find((variable) => variable.name === name)?.value;
  const mountOf = (volumeName: string) => container.volumeMounts!.find((mount) => mount.name === volumeName)!.mountPath;

  test('reads secrets with the provsec client, over https trusting the mounted CA, with its recipient key', () => {
    expect([...(container.args ?? [])].join(' ')).toMatch(
      /provsec-secret get "\$GROUP_ID" --output \/run\/cert-worker\//,
    );
    expect(env('PROVSEC_URL')).toMatch(/^https:\/\/provsec\.provsec\.svc/);
    expect(env('PROVSEC_CA_FILE')).toBe(`${mountOf('provsec-ca')}/ca.crt`);
    expect(env('PROVSEC_TOKEN_FILE')).toBe(`${mountOf('provsec-token')}/token`);
    expect(volumes.find((volume) => volume.name === 'provision-secret')?.emptyDir?.medium).toBe('Memory');
  });

  test("its private key comes from its own Vault path through its own Vault Agent, never from provsec's", () => {
    expect(annotations['vault.hashicorp.com/role']).toBe('cert-worker');
    expect(annotations['vault.hashicorp.com/agent-inject-secret-recipient-key']).toBe(
      'kv-dev/data/cert-worker/recipient-key',
    );
    expect(annotations['vault.hashicorp.com/agent-inject-perms-recipient-key']).toBe('0440');
    expect(env('PROVSEC_RECIPIENT_KEY_FILE')).toBe('/vault/secrets/recipient-key');
    expect(tokenOf('vault-token').audience).toBe('vault');
    const provsecAnnotations = at<Record<string, string>>(deployment, 'spec.template.metadata.annotations');
    expect(provsecAnnotations['vault.hashicorp.com/role']).not.toBe('cert-worker');
    expect(JSON.stringify(provsecAnnotations)).not.toContain('cert-worker/recipient-key');
  });

  test("provsec's policy registers the worker's public key, and loads with AUTH_REQUIRE_RECIPIENT_KEY=true as the overlay sets it", () => {
    const json = JSON.parse(readFileSync(join(K8S_ROOT, 'base', 'auth-policy.json'), 'utf8')) as {
      rules: { subject: string; recipientKey?: Record<string, unknown> }[];
    };
    const rule = json.rules.find((candidate) => candidate.subject === 'system:serviceaccount:provisioning:cert-worker');
    expect(rule?.recipientKey).toMatchObject({ kty: 'EC', crv: 'P-256', kid: 'cert-worker-2026-12' });
    expect(rule?.recipientKey).not.toHaveProperty('d');
    expect(() => AccessPolicy.fromJson(json, { requireRecipientKey: true })).not.toThrow();
    expect(readFileSync(join(K8S_ROOT, 'overlays', 'example', 'kustomization.yaml'), 'utf8')).toMatch(
      /^\s+- AUTH_REQUIRE_RECIPIENT_KEY=true$/m,
    );
  });

  test("mounts a projected token for provsec's audience that lives 10 minutes, well inside the service's maximum", () => {
    expect(token.audience).toBe(envFile.AUTH_AUDIENCE);
    expect(token.expirationSeconds).toBe(600);
    expect(token.expirationSeconds).toBeLessThanOrEqual(Number(envFile.AUTH_MAX_TOKEN_LIFETIME));
  });

  test('runs as the service account the policy names, with no other API token', () => {
    expect(podSpecOf(worker).serviceAccountName).toBe('cert-worker');
    expect(podSpecOf(worker).automountServiceAccountToken).toBe(false);
  });
});
