/**
 * The serving certificate in Kubernetes: the Vault Agent renders certificate, CA and key from ONE
 * pkiCert issuance into one 0440 file that TLS_CERT_FILE and TLS_KEY_FILE both name; the Vault
 * policy allows exactly that issue call; the Service, probes, NetworkPolicy and the example worker
 * speak HTTPS, the worker verifying against the issuing CA from a file.
 * (Every annotation key is checked against the injector's list in k8s-vault-annotations.test.ts.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCertificatePair } from '../../src/tls/certificate-pair';
import { TestCertificateAuthority } from '../support/test-pki';
import { at, findObject, K8S_ROOT, loadAllManifests, loadManifestFile, REPO_ROOT } from './support/manifests';

const PREFIX = 'vault.hashicorp.com/';
const NAME = 'serving-tls';

interface Container {
  name: string;
  env?: { name: string; value?: string }[];
  ports?: { name: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  args?: string[];
  command?: string[];
}
const deployment = findObject(loadManifestFile(join(K8S_ROOT, 'base', 'deployment.yaml')), 'Deployment', 'provsec');
const annotations = at<Record<string, string>>(deployment, 'spec.template.metadata.annotations');
const container = at<Container[]>(deployment, 'spec.template.spec.containers')[0]!;
const envOf = (of: Container, name: string) => of.env?.find((entry) => entry.name === name)?.value;
const template = annotations[`${PREFIX}agent-inject-template-${NAME}`] ?? '';
const pkiPolicy = readFileSync(join(REPO_ROOT, 'vault', 'provsec-pki-policy.hcl'), 'utf8').replace(/^\s*#.*$/gm, '');
const providedEnv: Record<string, string> = Object.fromEntries(
  readFileSync(join(K8S_ROOT, 'base', 'provsec.env'), 'utf8')
    .split('\n')
    .filter((line) => /^[A-Z_]+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
);

/** The pkiCert calls in the template: path and "key=value" arguments. */
const pkiCertCalls: { path: string; parameters: Record<string, string> }[] = [
  ...template.matchAll(/pkiCert((?:\s+"[^"]*")+)/g),
].map((match) => {
  const [path, ...parameters] = [...match[1]!.matchAll(/"([^"]*)"/g)].map((argument) => argument[1]!);
  return {
    path: path!,
    parameters: Object.fromEntries(
      parameters.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
    ),
  };
});

describe('the serving certificate comes from one Vault PKI issuance, rendered by the agent', () => {
  test('one template calls pkiCert exactly once and writes certificate, CA and key into the one file', () => {
    expect(pkiCertCalls).toHaveLength(1);
    const templatesCallingPki = Object.entries(annotations).filter(
      ([key, value]) => key.startsWith(`${PREFIX}agent-inject-template-`) && value.includes('pkiCert'),
    );
    expect(templatesCallingPki.map(([key]) => key)).toEqual([`${PREFIX}agent-inject-template-${NAME}`]);
    // writeToFile would split the issuance over files that are not replaced in one rename.
    expect(template).not.toMatch(/writeToFile|secret\s+"/);
    expect(template.replace(/\s+/g, '')).toContain('{{.Cert}}{{.CA}}{{.Key}}');
    expect(annotations[`${PREFIX}agent-inject-secret-${NAME}`]).toBe(pkiCertCalls[0]!.path);
  });

  test('the file is 0440 and a missing field fails the render instead of writing a partial file', () => {
    expect(annotations[`${PREFIX}agent-inject-perms-${NAME}`]).toBe('0440');
    expect(annotations[`${PREFIX}error-on-missing-key-${NAME}`]).toBe('true');
    expect(annotations[`${PREFIX}agent-pre-populate-only`]).toBe('false');
  });

  test('TLS_CERT_FILE and TLS_KEY_FILE both name the rendered file, fixed on the container', () => {
    const rendered = `${annotations[`${PREFIX}secret-volume-path`] ?? '/vault/secrets'}/${NAME}`;
    expect(envOf(container, 'TLS_CERT_FILE')).toBe(rendered);
    expect(envOf(container, 'TLS_KEY_FILE')).toBe(rendered);
    expect(envOf(container, 'TLS_DISABLE')).toBeUndefined();
    expect(providedEnv).not.toHaveProperty('TLS_DISABLE');
  });

  test('a file laid out as the template writes it (certificate, CA, key) is one pair the service accepts', () => {
    const ca = new TestCertificateAuthority();
    const issued = ca.issue({ commonName: pkiCertCalls[0]!.parameters.common_name });
    const file = `${issued.certificatePem}${ca.certificatePem}${issued.privateKeyPem}`;
    const pair = parseCertificatePair(file, file, new Date());
    expect(pair.serialNumber).toBe(issued.serialNumber);
    expect(pair.certificateChainPem).toBe(issued.certificatePem + ca.certificatePem);
  });
});

describe('the Vault policy allows exactly that issue call, for a short life', () => {
  const paths = [...pkiPolicy.matchAll(/path\s+"([^"]+)"/g)].map((match) => match[1]);
  const allowed: Record<string, string[]> = Object.fromEntries(
    [...pkiPolicy.matchAll(/"([a-z_]+)"\s*=\s*\[([^\]]*)\]/g)].map((match): [string, string[]] => [
      match[1]!,
      [...match[2]!.matchAll(/"([^"]*)"/g)].map((value) => value[1]!),
    ]),
  );

  test('one path, the one the template issues from, with create/update only', () => {
    expect(paths).toEqual([pkiCertCalls[0]!.path]);
    expect(pkiPolicy).toMatch(/capabilities\s*=\s*\["create",\s*"update"\]/);
    expect(pkiPolicy).not.toMatch(/[*+]"/);
  });

  test("the policy admits exactly the template's names and TTL, and the TTL is at most a day", () => {
    const { parameters } = pkiCertCalls[0]!;
    expect(Object.keys(parameters).sort()).toEqual(Object.keys(allowed).sort());
    for (const [name, value] of Object.entries(parameters)) expect(allowed[name]).toEqual([value]);
    const ttl = /^(\d+)h$/.exec(parameters.ttl ?? '');
    expect(Number(ttl?.[1])).toBeLessThanOrEqual(24);
  });

  test('the setup script attaches the policy to the agent role and its PKI role allows the same names', () => {
    const setup = readFileSync(join(REPO_ROOT, 'vault', 'setup.sh'), 'utf8');
    expect(setup).toContain('vault policy write "$VAULT_PKI_POLICY" "$SCRIPT_DIR/provsec-pki-policy.hcl"');
    expect(setup).toContain('token_policies="$VAULT_POLICY,$VAULT_PKI_POLICY"');
    expect(setup).toContain('max_ttl=24h');
    const { common_name: commonName, alt_names: altNames } = pkiCertCalls[0]!.parameters;
    expect(setup).toContain(`allowed_domains="provsec.$K8S_NAMESPACE.svc,provsec.$K8S_NAMESPACE.svc.cluster.local"`);
    expect([commonName, altNames]).toEqual(['provsec.provsec.svc', 'provsec.provsec.svc.cluster.local']);
  });
});

describe('everything that talks to the pods speaks HTTPS', () => {
  const all = loadAllManifests();

  test('the container port is the PORT the service listens on, and the probes use HTTPS on it', () => {
    expect(container.ports).toEqual([
      expect.objectContaining({ name: 'https', containerPort: Number(providedEnv.PORT) }),
    ]);
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe'])
      expect(at(deployment, `spec.template.spec.containers.0.${probe}.httpGet`)).toMatchObject({
        port: 'https',
        scheme: 'HTTPS',
      });
  });

  test('the Service offers 443 to the https port, and the NetworkPolicy admits that port alone', () => {
    const service = findObject(all, 'Service', 'provsec');
    expect(at(service, 'spec.ports')).toEqual([expect.objectContaining({ port: 443, targetPort: 'https' })]);
    const policy = findObject(all, 'NetworkPolicy', 'provsec-server');
    const ingressPorts = at<{ ports: { port: number }[] }[]>(policy, 'spec.ingress').flatMap((rule) => rule.ports);
    expect(ingressPorts.map((port) => port.port)).toEqual([container.ports![0]!.containerPort]);
  });

  test('the example worker calls https:// on the name in the certificate and trusts the CA from a mounted file', () => {
    const worker = findObject(
      loadManifestFile(join(K8S_ROOT, 'examples', 'cert-worker', 'cert-worker.yaml')),
      'Deployment',
      'cert-worker',
    );
    const workerContainer = at<Container[]>(worker, 'spec.template.spec.containers')[0]!;
    const url = new URL(envOf(workerContainer, 'PROVSEC_URL') ?? '');
    expect(url.protocol).toBe('https:');
    expect(url.hostname).toBe(pkiCertCalls[0]!.parameters.common_name);
    const caFile = envOf(workerContainer, 'PROVSEC_CA_FILE') ?? '';
    const mount = workerContainer.volumeMounts?.find((entry) => caFile.startsWith(`${entry.mountPath}/`));
    expect(mount?.readOnly).toBe(true);
    const volume = at<{ name: string; configMap?: { name: string } }[]>(worker, 'spec.template.spec.volumes').find(
      (entry) => entry.name === mount?.name,
    );
    expect(volume?.configMap?.name).toBe('provsec-ca');
    // Verification is never switched off.
    const text = readFileSync(join(K8S_ROOT, 'examples', 'cert-worker', 'cert-worker.yaml'), 'utf8');
    expect(text).not.toMatch(/NODE_TLS_REJECT_UNAUTHORIZED|--insecure|\s-k\s|rejectUnauthorized:\s*false/);
  });
});
