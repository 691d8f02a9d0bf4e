/**
 * docs/deploy.md stays true to the files it walks through: every repository path it names exists,
 * every setup.sh step it runs is one the script has, and the kubectl names it uses are the ones the
 * manifests define.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isKustomization, loadAllManifests, REPO_ROOT } from './support/manifests';

const guide = readFileSync(join(REPO_ROOT, 'docs', 'deploy.md'), 'utf8');
const setupScript = readFileSync(join(REPO_ROOT, 'vault', 'setup.sh'), 'utf8');
const objects = loadAllManifests()
  .map((document) => document.object)
  .filter((object) => !isKustomization(object));

describe('docs/deploy.md', () => {
  test('every repository path it names exists', () => {
    const paths = [
      ...new Set(
        [...guide.matchAll(/(?<![\w/.-])((?:k8s|vault|sql|src|scripts|docs)\/[A-Za-z0-9_./-]*[A-Za-z0-9_])/g)].map(
          (match) => match[1]!,
        ),
      ),
    ];
    expect(paths.length).toBeGreaterThan(8);
    expect(paths.filter((path) => !existsSync(join(REPO_ROOT, path)))).toEqual([]);
  });

  test('every vault/setup.sh step it runs is one the script handles', () => {
    const steps = [...guide.matchAll(/vault\/setup\.sh ((?:[a-z-]+ ?)+)/g)]
      .flatMap((match) => match[1]!.trim().split(' '))
      .filter((word) => /^[a-z]+(-kek)?$/.test(word));
    expect(steps).toEqual(
      expect.arrayContaining(['create-kek', 'policy', 'role', 'rotate-kek', 'retire-kek', 'destroy-kek', 'status']),
    );
    for (const step of new Set(steps)) expect(setupScript).toMatch(new RegExp(`^\\s+${step}\\)`, 'm'));
  });

  test("the Jobs, Deployment, Secrets and service accounts it names are the manifests' own", () => {
    const names = new Set(objects.map((object) => `${object.kind}/${object.metadata.name}`));
    for (const name of [
      'Job/provsec-migrate',
      'Job/provsec-rewrap',
      'Deployment/provsec',
      'ServiceAccount/provsec-operator',
    ]) {
      expect(names).toContain(name);
      expect(guide).toContain(name.split('/')[1]);
    }
    const secretNames = new Set(
      JSON.stringify(objects)
        .match(/"secretKeyRef":\{"name":"([^"]+)"/g)
        ?.map((match) => match.split('"')[5]),
    );
    expect([...secretNames].sort()).toEqual(['provsec-database', 'provsec-database-migrate']);
    for (const secret of secretNames) expect(guide).toContain(`create secret generic ${secret} `);
  });

  test("warns against the ADR's literal passphrase and shows a random one", () => {
    expect(guide).toMatch(/Do not use the literal passphrase `secret`/);
    expect(guide).toContain('openssl rand -hex 32');
  });
});
