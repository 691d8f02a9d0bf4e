/**
 * The leak sweep (test/support/leak-sweep.ts) must find what it is for, or its clean results mean
 * nothing: secrets planted in logs, responses and tables, in every encoding it claims to cover,
 * are found; an authorized read of the group's own secret is not a finding; unrelated bytes are not.
 */
import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { assertNoLeaksAcrossSuite, LeakEvidence, needlesFor } from '../support/leak-sweep';
import { createTestDatabase, poolFor } from '../support/test-database';

const SECRET = `ps-sweep-${randomBytes(16).toString('hex')}`;
const OTHER = `ps-other-${randomBytes(16).toString('hex')}`;

function evidenceWith(log: string): LeakEvidence {
  // Planted leaks must not reach the suite-wide sweep.
  const evidence = new LeakEvidence({ leaveForSuite: false });
  evidence.storedSecret('group-a', SECRET);
  evidence.storedSecret('group-b', OTHER);
  evidence.logs('planted', () => log);
  return evidence;
}

describe('the leak sweep finds planted leaks', () => {
  let pool: Pool;

  beforeAll(async () => {
    pool = poolFor(await createTestDatabase('sweep'));
    await pool.query('CREATE TABLE planted (id text PRIMARY KEY, note text, blob bytea)');
  });

  afterAll(() => pool.end());

  const sweepLog = async (log: string) => (await evidenceWith(log).sweep([])).findings;

  test.each([
    ['plain', `{"msg":"oops","value":"${SECRET}"}`],
    ['hex, either case', `dump ${Buffer.from(SECRET).toString('hex').toUpperCase()} end`],
    ['base64', Buffer.from(SECRET).toString('base64')],
    ['base64url', Buffer.from(`\u00ff\u00fe${SECRET}`, 'latin1').toString('base64url')],
  ])('in a log line: %s', async (_form, log) => {
    expect((await sweepLog(log)).map((finding) => finding.owner)).toContain('group-a');
  });

  test('base64 at every byte alignment inside a larger blob', async () => {
    for (let prefix = 0; prefix < 6; prefix += 1) {
      const blob = Buffer.concat([randomBytes(prefix), Buffer.from(SECRET), randomBytes(5)]).toString('base64');
      expect({ prefix, owners: (await sweepLog(blob)).map((finding) => finding.owner) }).toEqual({
        prefix,
        owners: expect.arrayContaining(['group-a']) as unknown,
      });
    }
  });

  test('JSON- and URL-escaped forms of a secret with special characters', async () => {
    const special = 'ps "quoted" \\ ünïcode/ & ?';
    expect(needlesFor(special).map((needle) => needle.form)).toEqual(
      expect.arrayContaining(['plain', 'json-escaped', 'url-encoded', 'hex']),
    );
    for (const written of [JSON.stringify({ special }), `/v1/x?q=${encodeURIComponent(special)}`]) {
      const evidence = new LeakEvidence({ leaveForSuite: false });
      evidence.storedSecret('group-s', special);
      evidence.logs('planted', () => written);
      expect((await evidence.sweep([])).findings.map((finding) => finding.owner)).toContain('group-s');
    }
  });

  test('in a table: a text column (plain or base64) and a bytea column', async () => {
    await pool.query('INSERT INTO planted VALUES ($1, $2, $3), ($4, $5, $6)', [
      'r1',
      `note ${SECRET}`,
      null,
      'r2',
      Buffer.from(OTHER).toString('base64'),
      Buffer.from(`xx${SECRET}yy`),
    ]);
    const findings = (await evidenceWith('').sweep([{ label: 'db', pool }])).findings;
    expect(findings).toEqual(
      expect.arrayContaining([
        { source: 'table:db.public.planted', owner: 'group-a', form: 'plain' },
        { source: 'table:db.public.planted', owner: 'group-a', form: 'hex' },
        { source: 'table:db.public.planted', owner: 'group-b', form: 'base64@0' },
      ]),
    );
    await pool.query('DELETE FROM planted');
  });

  test('responses: only the provisionSecret of a 200 read of the same group is allowed', async () => {
    const evidence = evidenceWith('');
    evidence.response(
      'GET',
      '/v1/device-groups/group-a/provision-secret',
      200,
      JSON.stringify({ id: 'group-a', provisionSecret: SECRET, secretVersion: 1 }),
    );
    expect((await evidence.sweep([])).findings).toEqual([]);

    evidence.response(
      'GET',
      '/v1/device-groups/group-a/provision-secret',
      200,
      JSON.stringify({ id: 'group-a', provisionSecret: OTHER, secretVersion: 1 }),
    );
    evidence.response(
      'GET',
      '/v1/device-groups/group-a/provision-secret',
      200,
      JSON.stringify({ id: 'group-a', provisionSecret: SECRET, secretVersion: 1, debug: SECRET }),
    );
    evidence.response(
      'GET',
      '/v1/device-groups/group-a/provision-secret',
      500,
      JSON.stringify({ detail: `cannot open ${SECRET}` }),
    );
    evidence.response('POST', '/v1/device-groups', 201, JSON.stringify({ id: 'group-b', echo: OTHER }));
    const findings = (await evidence.sweep([])).findings;
    expect(findings).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ owner: 'group-a', form: "a secret that is not this group's" }),
        expect.objectContaining({ owner: 'group-a', form: 'plain' }),
        expect.objectContaining({ owner: 'group-b', form: 'plain' }),
      ]),
    );
  });

  test('key material is found as hex or base64 anywhere', async () => {
    const keyHex = randomBytes(32).toString('hex');
    for (const written of [
      `kek=${keyHex}`,
      Buffer.from(keyHex, 'hex').toString('base64'),
      `x${Buffer.concat([Buffer.alloc(1), Buffer.from(keyHex, 'hex')]).toString('base64')}`,
    ]) {
      const evidence = new LeakEvidence({ leaveForSuite: false });
      evidence.keyMaterial('kek', keyHex);
      evidence.logs('planted', () => written);
      expect((await evidence.sweep([])).findings.map((finding) => finding.owner)).toEqual(['key:kek']);
    }
  });

  test('no false positives: envelopes, ids and unrelated text are not findings', async () => {
    const log = [
      randomBytes(200).toString('hex'),
      randomBytes(200).toString('base64'),
      'group-a',
      'ps-sweep-',
      SECRET.slice(0, 20),
    ].join('\n');
    expect(await sweepLog(log)).toEqual([]);
  });

  test("the suite-wide sweep searches every file's evidence for every file's secrets, then clears it", async () => {
    const realRunKey = process.env.PROVSEC_TEST_ADMIN_URL;
    // A run of its own, so this test's planted leak never meets the real suite's evidence.
    process.env.PROVSEC_TEST_ADMIN_URL = `postgres://sweep-self-test/${randomBytes(8).toString('hex')}`;
    try {
      const fileOne = new LeakEvidence();
      fileOne.storedSecret('group-a', SECRET);
      fileOne.logs('one', () => 'nothing to see');
      const fileTwo = new LeakEvidence();
      fileTwo.storedSecret('group-b', OTHER);
      // File two logged file one's secret: only a sweep across files can see that.
      fileTwo.logs('two', () => `oops ${SECRET}`);
      expect((await fileOne.sweep([])).findings).toEqual([]);
      expect((await fileTwo.sweep([])).findings).toEqual([]);
      await expect(assertNoLeaksAcrossSuite()).rejects.toThrow(/plain bytes of group-a in log:two/);
      // The evidence is gone after a sweep.
      expect(await assertNoLeaksAcrossSuite()).toBeUndefined();

      const clean = new LeakEvidence();
      clean.storedSecret('group-a', SECRET);
      clean.logs('clean', () => 'nothing');
      await clean.sweep([]);
      expect(await assertNoLeaksAcrossSuite()).toMatch(/1 secrets and keys from 1 files.*nothing found/);
    } finally {
      process.env.PROVSEC_TEST_ADMIN_URL = realRunKey;
    }
  });
});
