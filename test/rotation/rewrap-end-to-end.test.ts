/**
 * A whole rotation through the file key source, as the Vault Agent would drive it: a keyring with a
 * new current KEK arrives, new writes use it at once, the rewrap (library, then the compiled
 * command) moves every row, the old KEK is removed, and every secret still reads back.
 */
import request from 'supertest';
import { rewrapAll } from '../../src/rotation/rewrap';
import { startTestService, type TestService } from '../support/test-service';
import { newKek, rowsPerKek, runRewrapCli, secretFor, waitFor } from './support/rotation-kit';
import { bodyOf, type DeviceGroupJson, type ProvisionSecretJson } from '../api/support/api-client';

const GROUPS = 24;

describe('KEK rotation end to end (file key source, API, library rewrap and the rewrap command)', () => {
  let svc: TestService;
  const kek1 = newKek(1);
  const kek2 = newKek(2);
  const kek3 = newKek(3);
  let management: string;
  let keyAdmin: string;
  let worker: string;

  beforeAll(async () => {
    svc = await startTestService({
      keyFileContent: { current: 1, keys: { '1': kek1.hex } },
      env: { SECRET_READ_RATE_LIMIT_PER_MINUTE: '100000' },
    });
    management = await svc.token('management-api');
    keyAdmin = await svc.token('key-admin');
    worker = await svc.token('system:serviceaccount:provisioning:cert-worker');
  });
  afterAll(() => svc.stop());

  const api = () => request(svc.url);
  const currentKekId = () => svc.service.keySource.currentKeyring()?.current.kekId;
  async function swapTo(content: unknown, kekId: string, knownKekIds: number): Promise<void> {
    svc.writeKeyFile(content);
    await waitFor(
      () => currentKekId() === kekId && svc.service.keySource.status().knownKekIds.length === knownKekIds,
      `the service to load ${kekId}`,
    );
  }
  async function keyStatus(): Promise<{
    currentKekId: string;
    rowsNotUnderCurrent: number;
    keys: Array<{ kekId: string; current: boolean; available: boolean; rows: number }>;
  }> {
    const response = await api().get('/v1/keys').set('Authorization', `Bearer ${keyAdmin}`);
    expect(response.status).toBe(200);
    return response.body as never;
  }

  test('new writes use the new current KEK at once; rewrap moves the rest; with the old KEK gone every secret reads back', async () => {
    for (let index = 0; index < GROUPS; index++) {
      const id = `e2e-${index}`;
      const created = await api()
        .post('/v1/device-groups')
        .set('Authorization', `Bearer ${management}`)
        .send({ id, provisionSecret: secretFor(id) });
      expect(created.status).toBe(201);
      expect(bodyOf<DeviceGroupJson>(created).kekId).toBe(kek1.kek.kekId);
    }

    // Rotation in Vault: the agent renders a keyring whose current is the new version.
    await swapTo({ current: 2, keys: { '1': kek1.hex, '2': kek2.hex } }, kek2.kek.kekId, 2);
    const fresh = await api()
      .post('/v1/device-groups')
      .set('Authorization', `Bearer ${management}`)
      .send({ id: 'e2e-new', provisionSecret: secretFor('e2e-new') });
    expect(bodyOf<DeviceGroupJson>(fresh).kekId).toBe(kek2.kek.kekId);
    const rotated = await api()
      .put('/v1/device-groups/e2e-0/provision-secret')
      .set('Authorization', `Bearer ${management}`)
      .send({ provisionSecret: secretFor('e2e-0', 2) });
    expect(rotated.status).toBe(200);
    expect(rotated.body).toMatchObject({ kekId: kek2.kek.kekId, secretVersion: 2 });
    // Rows under the old KEK still open while it is present.
    const stillOld = await api()
      .get('/v1/device-groups/e2e-1/provision-secret')
      .set('Authorization', `Bearer ${worker}`);
    expect(stillOld.body).toMatchObject({ provisionSecret: secretFor('e2e-1') });
    const before = await waitFor(async () => {
      const status = await keyStatus();
      return status.rowsNotUnderCurrent === GROUPS - 1 ? status : undefined;
    }, '/v1/keys to count the rows left under KEK1');
    expect(before.currentKekId).toBe(kek2.kek.kekId);
    expect(before.keys).toEqual(
      expect.arrayContaining([
        { kekId: kek1.kek.kekId, versionLabel: 1, current: false, available: true, rows: GROUPS - 1 },
        { kekId: kek2.kek.kekId, versionLabel: 2, current: true, available: true, rows: 2 },
      ]),
    );

    // The library function, as the background worker calls it.
    const result = await rewrapAll(
      { pool: svc.service.pool, keys: svc.service.keySource },
      { batchSize: 5, concurrency: 2 },
    );
    expect(result).toMatchObject({ rewrapped: GROUPS - 1, failed: 0, remaining: 0, total: GROUPS - 1, stopped: false });
    expect(await rowsPerKek(svc.pool)).toEqual({ [kek2.kek.kekId]: GROUPS + 1 });

    // A second rotation, finished by the compiled command in its own process.
    await swapTo({ current: 3, keys: { '2': kek2.hex, '3': kek3.hex } }, kek3.kek.kekId, 2);
    const run = await runRewrapCli(
      { DATABASE_URL: svc.databaseUrl, KEY_SOURCE: 'file', KEY_FILE: svc.keyFile, PROVSEC_STATE_DIR: svc.stateDir },
      ['--batch-size', '4'],
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    // Not a terminal: plain progress lines (no bar, no escape codes), then the summary.
    expect(run.stdout).toMatch(/^rewrap: \d+\/25 rows, \d+ rows\/s, ETA \S+, failed 0$/m);
    expect(run.stdout).toContain(`rewrap: 25 rows moved to ${kek3.kek.kekId}`);
    expect(run.stdout).toContain('0 left under other KEKs');
    expect(run.stdout).not.toContain('\u001b['); // no terminal escape codes
    expect(await rowsPerKek(svc.pool)).toEqual({ [kek3.kek.kekId]: GROUPS + 1 });

    // Retire the old versions: only KEK3 is left, and every secret still opens.
    await swapTo({ current: 3, keys: { '3': kek3.hex } }, kek3.kek.kekId, 1);
    for (let index = 0; index < GROUPS; index++) {
      const id = `e2e-${index}`;
      const read = await api().get(`/v1/device-groups/${id}/provision-secret`).set('Authorization', `Bearer ${worker}`);
      expect(read.status).toBe(200);
      expect(read.body).toEqual(
        index === 0
          ? { id, provisionSecret: secretFor(id, 2), secretVersion: 2 }
          : { id, provisionSecret: secretFor(id), secretVersion: 1 },
      );
    }
    const newest = await api()
      .get('/v1/device-groups/e2e-new/provision-secret')
      .set('Authorization', `Bearer ${worker}`);
    expect(bodyOf<ProvisionSecretJson>(newest).provisionSecret).toBe(secretFor('e2e-new'));
    const after = await waitFor(async () => {
      const status = await keyStatus();
      return status.keys.length === 1 ? status : undefined;
    }, '/v1/keys to drop the retired KEKs');
    expect(after).toMatchObject({
      currentKekId: kek3.kek.kekId,
      rowsNotUnderCurrent: 0,
      keys: [{ kekId: kek3.kek.kekId, current: true, available: true, rows: GROUPS + 1 }],
    });
  });
});
