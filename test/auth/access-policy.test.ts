import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessPolicy } from '../../src/auth/access-policy';
import { PolicyError } from '../../src/auth/errors';
import type { Principal } from '../../src/auth/principal';

const K8S = 'https://kubernetes.default.svc.cluster.local';
const who = (subject: string, issuer = K8S): Principal => ({
  issuer,
  subject,
  expiresAt: new Date(Date.now() + 60_000),
});

const policy = AccessPolicy.fromJson({
  rules: [
    {
      subject: 'system:serviceaccount:provisioning:cert-worker',
      issuer: K8S,
      permissions: ['provision-secret:read'],
      groups: ['fleet-*', 'lab-?'],
    },
    { subject: 'system:serviceaccount:provisioning:*', permissions: ['device-groups:read'] },
    { subject: 'management-api', permissions: ['device-groups:read', 'device-groups:write', 'audit:read'] },
  ],
});

describe('subjects', () => {
  test('an exact subject matches only itself', () => {
    expect(policy.can(who('system:serviceaccount:provisioning:cert-worker'), 'provision-secret:read', 'fleet-1')).toBe(
      true,
    );
    expect(
      policy.can(who('system:serviceaccount:provisioning:cert-worker-2'), 'provision-secret:read', 'fleet-1'),
    ).toBe(false);
    expect(policy.can(who('system:serviceaccount:provisioning:cert-worke'), 'provision-secret:read', 'fleet-1')).toBe(
      false,
    );
  });

  test('a subject ending in * matches by prefix, and only by prefix', () => {
    expect(policy.can(who('system:serviceaccount:provisioning:anything'), 'device-groups:read', 'g1')).toBe(true);
    expect(policy.can(who('system:serviceaccount:provisioning:'), 'device-groups:read', 'g1')).toBe(true);
    expect(policy.can(who('system:serviceaccount:other:anything'), 'device-groups:read', 'g1')).toBe(false);
    expect(policy.can(who('x-system:serviceaccount:provisioning:a'), 'device-groups:read', 'g1')).toBe(false);
  });

  test('a prefix rule grants nothing beyond its permissions', () => {
    expect(policy.can(who('system:serviceaccount:provisioning:anything'), 'provision-secret:read', 'fleet-1')).toBe(
      false,
    );
  });
});

describe('issuer restriction', () => {
  test('a rule with issuer does not match the same subject from another issuer', () => {
    expect(
      policy.can(
        who('system:serviceaccount:provisioning:cert-worker', 'provsec-dev'),
        'provision-secret:read',
        'fleet-1',
      ),
    ).toBe(false);
  });

  test('a rule without issuer matches the subject from any trusted issuer', () => {
    expect(policy.can(who('management-api', 'provsec-dev'), 'device-groups:write', 'g')).toBe(true);
    expect(policy.can(who('management-api', 'https://idp.example'), 'device-groups:write', 'g')).toBe(true);
  });
});

describe('groups', () => {
  const worker = who('system:serviceaccount:provisioning:cert-worker');

  test('group globs limit where a permission applies', () => {
    expect(policy.can(worker, 'provision-secret:read', 'fleet-eu-1')).toBe(true);
    expect(policy.can(worker, 'provision-secret:read', 'lab-a')).toBe(true);
    expect(policy.can(worker, 'provision-secret:read', 'lab-ab')).toBe(false);
    expect(policy.can(worker, 'provision-secret:read', 'factory-1')).toBe(false);
  });

  test('a rule without groups covers every valid group id, but never an invalid one', () => {
    expect(policy.can(who('management-api'), 'device-groups:write', 'any.group:1')).toBe(true);
    expect(policy.can(who('management-api'), 'device-groups:write', 'not a group id')).toBe(false);
    expect(policy.can(who('management-api'), 'device-groups:write', '')).toBe(false);
  });

  test('without a group id (a collection call), any granting rule allows', () => {
    expect(policy.can(worker, 'provision-secret:read')).toBe(true);
    expect(policy.can(worker, 'audit:read')).toBe(false);
  });

  test('groupFilter keeps only the groups a principal may use the permission on', () => {
    const visible = policy.groupFilter(worker, 'provision-secret:read');
    expect(['fleet-1', 'lab-b', 'factory-1', 'lab-bb'].filter(visible)).toEqual(['fleet-1', 'lab-b']);
    expect(['fleet-1', 'factory-1'].filter(policy.groupFilter(worker, 'device-groups:read'))).toEqual([
      'fleet-1',
      'factory-1',
    ]);
    expect(['fleet-1'].filter(policy.groupFilter(worker, 'keys:admin'))).toEqual([]);
  });

  test('groupScope: the union of the granting rules’ globs, or all groups when one rule has no groups or only "*"', () => {
    expect(policy.groupScope(worker, 'provision-secret:read')).toEqual({
      allGroups: false,
      globs: ['fleet-*', 'lab-?'],
    });
    expect(policy.groupScope(worker, 'device-groups:read')).toEqual({ allGroups: true });
    expect(policy.groupScope(worker, 'keys:admin')).toEqual({ allGroups: false, globs: [] });
    const scoped = AccessPolicy.fromJson({
      rules: [
        { subject: 'a', permissions: ['audit:read'], groups: ['fleet-a*'] },
        { subject: 'a', permissions: ['audit:read'], groups: ['fleet-b*', 'fleet-a*'] },
        { subject: 'b', permissions: ['audit:read'], groups: ['fleet-a*', '**'] },
      ],
    });
    expect(scoped.groupScope(who('a'), 'audit:read')).toEqual({ allGroups: false, globs: ['fleet-a*', 'fleet-b*'] });
    expect(scoped.groupScope(who('b'), 'audit:read')).toEqual({ allGroups: true });
  });

  test('permissions from several matching rules add up', () => {
    expect(policy.can(worker, 'device-groups:read', 'factory-1')).toBe(true);
    expect(policy.can(worker, 'provision-secret:read', 'fleet-1')).toBe(true);
  });
});

test('no rule, no access: an unknown subject gets nothing, for every permission', () => {
  for (const permission of [
    'device-groups:read',
    'device-groups:write',
    'provision-secret:read',
    'audit:read',
    'keys:admin',
  ] as const) {
    expect(policy.can(who('stranger'), permission)).toBe(false);
    expect(policy.can(who('stranger'), permission, 'fleet-1')).toBe(false);
    expect(policy.groupFilter(who('stranger'), permission)('fleet-1')).toBe(false);
  }
});

describe('invalid policies are refused with one clear line', () => {
  const cases: Array<[string, unknown, string]> = [
    ['not an object', [], 'policy: '],
    ['no rules member', {}, 'rules: '],
    ['empty rules', { rules: [] }, 'rules: must hold at least one rule'],
    [
      'an unknown top-level member',
      { rules: [{ subject: 'a', permissions: ['audit:read'] }], rule: [] },
      'policy: has unknown member "rule"',
    ],
    [
      'a misspelt rule member',
      { rules: [{ subject: 'a', permission: ['audit:read'] }] },
      'rules[0].permissions: is required; rules[0]: has unknown member "permission"',
    ],
    [
      'an unknown permission',
      { rules: [{ subject: 'a', permissions: ['provision-secret:write'] }] },
      'rules[0].permissions[0]: must be one of device-groups:read',
    ],
    [
      'no permissions',
      { rules: [{ subject: 'a', permissions: [] }] },
      'rules[0].permissions: must list at least one permission',
    ],
    [
      'an empty subject',
      { rules: [{ subject: '', permissions: ['audit:read'] }] },
      'rules[0].subject: must not be empty',
    ],
    [
      'a subject that is not a string',
      { rules: [{ subject: 7, permissions: ['audit:read'] }] },
      'rules[0].subject: must be a string',
    ],
    [
      'a * inside a subject',
      { rules: [{ subject: 'system:*:cert-worker', permissions: ['audit:read'] }] },
      'rules[0].subject: may contain "*" only as its last character',
    ],
    [
      'a bare * without issuer',
      { rules: [{ subject: '*', permissions: ['audit:read'] }] },
      'rules[0].subject: subject "*" matches everyone and needs an "issuer"',
    ],
    [
      'an empty issuer',
      { rules: [{ subject: 'a', issuer: '', permissions: ['audit:read'] }] },
      'rules[0].issuer: must not be empty',
    ],
    [
      'a group pattern with regex syntax',
      { rules: [{ subject: 'a', permissions: ['audit:read'], groups: ['fleet-(1|2)'] }] },
      'rules[0].groups[0]: must be a group id glob',
    ],
    [
      'an empty groups list',
      { rules: [{ subject: 'a', permissions: ['audit:read'], groups: [] }] },
      'rules[0].groups: must list at least one group pattern',
    ],
    [
      'groups as a string',
      { rules: [{ subject: 'a', permissions: ['audit:read'], groups: '*' }] },
      'rules[0].groups: must be an array of group patterns',
    ],
  ];
  test.each(cases)('%s', (_name, json, expected) => {
    let thrown: unknown;
    try {
      AccessPolicy.fromJson(json);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(PolicyError);
    const message = (thrown as PolicyError).message;
    expect(message).toContain(expected);
    expect(message).toMatch(/^access policy is invalid: /);
    expect(message).not.toContain('\n');
  });

  test('a bare * with an issuer is allowed (everyone of that issuer)', () => {
    const open = AccessPolicy.fromJson({
      rules: [{ subject: '*', issuer: 'provsec-dev', permissions: ['device-groups:read'] }],
    });
    expect(open.can(who('anyone', 'provsec-dev'), 'device-groups:read', 'g')).toBe(true);
    expect(open.can(who('anyone', K8S), 'device-groups:read', 'g')).toBe(false);
  });
});

describe('loading from a file', () => {
  let folder: string;
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'provsec-policy-'));
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  test('a valid file loads', async () => {
    const path = join(folder, 'policy.json');
    await writeFile(path, JSON.stringify({ rules: [{ subject: 'a', permissions: ['audit:read'] }] }));
    const loaded = await AccessPolicy.load(path);
    expect(loaded.ruleCount).toBe(1);
    expect(loaded.can(who('a'), 'audit:read')).toBe(true);
  });

  test('the shipped dev policy loads and grants what the brief says', async () => {
    const dev = await AccessPolicy.load(join(__dirname, '..', '..', 'config', 'dev-policy.json'));
    const management = who('management-api', 'provsec-dev');
    const worker = who('cert-worker-1', 'provsec-dev');
    expect(
      (['device-groups:read', 'device-groups:write', 'audit:read', 'keys:admin'] as const).every((p) =>
        dev.can(management, p, 'g'),
      ),
    ).toBe(true);
    expect(dev.can(management, 'provision-secret:read', 'g')).toBe(false);
    expect(dev.can(worker, 'provision-secret:read', 'g')).toBe(true);
    expect(dev.can(worker, 'device-groups:read', 'g')).toBe(true);
    expect(dev.can(worker, 'device-groups:write', 'g')).toBe(false);
    expect(dev.can(who('cert-worker-1', K8S), 'provision-secret:read', 'g')).toBe(false);
  });

  test('a missing file, bad JSON and an invalid policy each name the file', async () => {
    const missing = join(folder, 'missing.json');
    await expect(AccessPolicy.load(missing)).rejects.toThrow(`access policy ${missing} cannot be read (ENOENT)`);
    const broken = join(folder, 'broken.json');
    await writeFile(broken, '{"rules": [');
    await expect(AccessPolicy.load(broken)).rejects.toThrow(new RegExp(`^access policy ${broken} is not valid JSON`));
    const invalid = join(folder, 'invalid.json');
    await writeFile(invalid, JSON.stringify({ rules: [{ subject: 'a', permissions: ['root'] }] }));
    await expect(AccessPolicy.load(invalid)).rejects.toThrow(
      `access policy ${invalid} is invalid: rules[0].permissions[0]: must be one of`,
    );
  });
});
