/**
 * The old KEK removed from the key source before the rewrap: the service stays ready but says so,
 * GET /v1/keys shows the stranded rows, reads of them fail closed (500, no plaintext), and the
 * rewrap command exits 1 naming the missing KEK. Putting the KEK back lets the rewrap finish.
 */
// Typed asymmetric matchers (@types/jest gives them as `any`).
import { expect } from '@jest/globals';
import request from 'supertest';
import { startTestService, type TestService } from '../support/test-service';
import { newKek, rowsPerKek, runRewrapCli, secretFor, waitFor } from './support/rotation-kit';

const STRANDED = 4;

/** The /readyz body (health-routes.ts): each check's outcome by name. */
interface ReadinessJson {
  checks: Record<string, { ok: boolean; detail?: string }>;
}

describe('a KEK removed while rows still need it', () => {
  let svc: TestService;
  const kek1 = newKek(1);
  const kek2 = newKek(2);

  beforeAll(async () => {
    svc = await startTestService({ keyFileContent: { current: 1, keys: { '1': kek1.hex } } });
  });
  afterAll(() => svc.stop());

  const cliEnv = () => ({
    DATABASE_URL: svc.databaseUrl,
    KEY_SOURCE: 'file',
    KEY_FILE: svc.keyFile,
    PROVSEC_STATE_DIR: svc.stateDir,
  });

  test('readiness stays 200 and reports it, /v1/keys shows the rows, reads fail closed, the command exits 1', async () => {
    const management = await svc.token('management-api');
    for (let index = 0; index < STRANDED; index++) {
      const id = `stranded-${index}`;
      expect(
        (
          await request(svc.url)
            .post('/v1/device-groups')
            .set('Authorization', `Bearer ${management}`)
            .send({ id, provisionSecret: secretFor(id) })
        ).status,
      ).toBe(201);
    }
    // KEK1 retired in Vault before anyone ran the rewrap.
    svc.writeKeyFile({ current: 2, keys: { '2': kek2.hex } });
    await waitFor(() => svc.service.keySource.currentKeyring()?.current.kekId === kek2.kek.kekId, 'the swap to KEK2');

    const ready = await waitFor(async () => {
      const response = await request(svc.url).get('/readyz');
      return (response.body as Partial<ReadinessJson>).checks?.storedKeks?.detail ? response : undefined;
    }, '/readyz to report the missing KEK');
    expect(ready.status).toBe(200);
    expect((ready.body as ReadinessJson).checks.storedKeks).toEqual({
      ok: true,
      detail: expect.stringContaining(`${kek1.kek.kekId} (${STRANDED})`),
    });

    const status = await request(svc.url)
      .get('/v1/keys')
      .set('Authorization', `Bearer ${await svc.token('key-admin')}`);
    expect(status.status).toBe(200);
    const keyStatus = status.body as { keys: unknown[]; rowsUnderUnavailableKeks: number };
    expect(keyStatus.keys).toEqual(
      expect.arrayContaining([
        { kekId: kek1.kek.kekId, versionLabel: null, current: false, available: false, rows: STRANDED },
      ]),
    );
    expect(keyStatus.rowsUnderUnavailableKeks).toBe(STRANDED);

    const read = await request(svc.url)
      .get('/v1/device-groups/stranded-0/provision-secret')
      .set('Authorization', `Bearer ${await svc.token('system:serviceaccount:provisioning:cert-worker')}`);
    expect(read.status).toBe(500);
    expect(read.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(read.body).toMatchObject({
      title: 'Stored Secret Unreadable',
      detail: expect.stringContaining('kek_unavailable'),
    });
    expect((read.body as { provisionSecret?: unknown }).provisionSecret).toBeUndefined();
    expect(read.text).not.toContain(secretFor('stranded-0'));

    const stranded = await runRewrapCli(cliEnv(), ['--crypto-threads', '0']);
    expect(stranded.code).toBe(1);
    expect(stranded.stdout).toContain(`${STRANDED} rows under ${kek1.kek.kekId}, which the key source does not hold`);
    expect(stranded.stdout).toContain(`${STRANDED} left under other KEKs`);
    expect(await rowsPerKek(svc.pool)).toEqual({ [kek1.kek.kekId]: STRANDED });

    // Restored (the old version undeleted in Vault): the rewrap now finishes and the reads work.
    svc.writeKeyFile({ current: 2, keys: { '1': kek1.hex, '2': kek2.hex } });
    await waitFor(() => svc.service.keySource.status().knownKekIds.length === 2, 'KEK1 to be back');
    const finished = await runRewrapCli(cliEnv());
    expect(finished.code).toBe(0);
    expect(await rowsPerKek(svc.pool)).toEqual({ [kek2.kek.kekId]: STRANDED });
    const reread = await request(svc.url)
      .get('/v1/device-groups/stranded-0/provision-secret')
      .set('Authorization', `Bearer ${await svc.token('system:serviceaccount:provisioning:cert-worker')}`);
    expect(reread.body).toMatchObject({ provisionSecret: secretFor('stranded-0') });
  });

  test('the command exits 2 on a bad argument or configuration, before touching anything', async () => {
    const badBatch = await runRewrapCli(cliEnv(), ['--batch-size', '0']);
    expect(badBatch.code).toBe(2);
    expect(badBatch.stderr).toContain('--batch-size: must be a whole number from 1 to 10000');
    const badSource = await runRewrapCli({ ...cliEnv(), KEY_SOURCE: 'nonsense' });
    expect(badSource.code).toBe(2);
    expect(badSource.stderr).toContain('KEY_SOURCE');
  });
});
