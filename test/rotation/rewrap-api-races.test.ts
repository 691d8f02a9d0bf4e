/**
 * API writes and deletions during a rewrap: a rotated row is never clobbered with its old secret
 * and a deleted row is never revived. First with a forced interleaving (the batch's transaction
 * held open after its claim while the API rotates and deletes claimed rows), then with many
 * concurrent operations and the invariants checked at the end.
 */
import request from 'supertest';
import { rewrapAll } from '../../src/rotation/rewrap';
import { startTestService, type TestService } from '../support/test-service';
import {
  interceptingPool,
  isRewrapUpdate,
  newKek,
  rowsPerKek,
  secretFor,
  sleep,
  waitFor,
} from './support/rotation-kit';
import { bodyOf, type ProvisionSecretJson } from '../api/support/api-client';

describe('API rotations and deletions during a rewrap', () => {
  let svc: TestService;
  const kek1 = newKek(1);
  const kek2 = newKek(2);
  let management: string;
  let worker: string;

  beforeAll(async () => {
    svc = await startTestService({
      keyFileContent: { current: 1, keys: { '1': kek1.hex } },
      env: { SECRET_READ_RATE_LIMIT_PER_MINUTE: '100000' },
    });
    management = await svc.token('management-api');
    worker = await svc.token('system:serviceaccount:provisioning:cert-worker');
  });
  afterAll(() => svc.stop());

  async function createGroups(prefix: string, count: number): Promise<string[]> {
    const ids = Array.from({ length: count }, (_, index) => `${prefix}-${index}`);
    for (const id of ids)
      expect(
        (
          await request(svc.url)
            .post('/v1/device-groups')
            .set('Authorization', `Bearer ${management}`)
            .send({ id, provisionSecret: secretFor(id) })
        ).status,
      ).toBe(201);
    return ids;
  }
  async function rotateKeyFileTo(content: unknown, kekId: string): Promise<void> {
    svc.writeKeyFile(content);
    await waitFor(() => svc.service.keySource.currentKeyring()?.current.kekId === kekId, `the swap to ${kekId}`);
  }
  const readSecret = (id: string) =>
    request(svc.url).get(`/v1/device-groups/${id}/provision-secret`).set('Authorization', `Bearer ${worker}`);
  const rotate = (id: string, secret: string) =>
    request(svc.url)
      .put(`/v1/device-groups/${id}/provision-secret`)
      .set('Authorization', `Bearer ${management}`)
      .send({ provisionSecret: secret });
  const remove = (id: string) =>
    request(svc.url).delete(`/v1/device-groups/${id}`).set('Authorization', `Bearer ${management}`);

  test('a rotation and a deletion of rows a batch holds wait for its commit: the new secret wins, the deleted row stays deleted', async () => {
    const ids = await createGroups('held', 12);
    await rotateKeyFileTo({ current: 2, keys: { '1': kek1.hex, '2': kek2.hex } }, kek2.kek.kekId);

    let reached!: () => void;
    const atUpdate = new Promise<void>((resolve) => (reached = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const held = interceptingPool(svc.service.pool, async (sql) => {
      if (!isRewrapUpdate(sql)) return;
      reached();
      await gate;
    });
    // One batch claims every row (locked), rewraps them, then stops at its UPDATE.
    const rewrap = rewrapAll({ pool: held, keys: svc.service.keySource }, { batchSize: 100 });
    await atUpdate;

    let rotationDone = false;
    let deletionDone = false;
    const rotation = rotate('held-3', 'rotated-during-rewrap').then((response) => ((rotationDone = true), response));
    const deletion = remove('held-5').then((response) => ((deletionDone = true), response));
    await sleep(500);
    // Both are blocked on the row locks the batch holds.
    expect({ rotationDone, deletionDone }).toEqual({ rotationDone: false, deletionDone: false });

    release();
    expect(await rewrap).toMatchObject({ rewrapped: ids.length, remaining: 0 });
    expect((await rotation).status).toBe(200);
    expect((await rotation).body).toMatchObject({ secretVersion: 2, kekId: kek2.kek.kekId });
    expect((await deletion).status).toBe(204);

    expect((await readSecret('held-3')).body).toEqual({
      id: 'held-3',
      provisionSecret: 'rotated-during-rewrap',
      secretVersion: 2,
    });
    expect((await readSecret('held-5')).status).toBe(404);
    const count = await svc.pool.query<{ n: string }>("SELECT count(*) AS n FROM ota_groups WHERE id LIKE 'held-%'");
    expect(Number(count.rows[0]!.n)).toBe(ids.length - 1);
    for (const id of ids.filter((candidate) => candidate !== 'held-3' && candidate !== 'held-5'))
      expect(bodyOf<ProvisionSecretJson>(await readSecret(id)).provisionSecret).toBe(secretFor(id));
  });

  test('many rotations and deletions racing a rewrap of small batches: every read returns the latest secret, no deleted row comes back', async () => {
    const ids = await createGroups('race', 120);
    const kek3 = newKek(3);
    await rotateKeyFileTo({ current: 3, keys: { '1': kek1.hex, '2': kek2.hex, '3': kek3.hex } }, kek3.kek.kekId);

    const deleted = new Set(ids.filter((_, index) => index % 7 === 0));
    const rotatedIds = new Set(ids.filter((_, index) => index % 3 === 0 && !deleted.has(`race-${index}`)));
    const rewrap = rewrapAll({ pool: svc.service.pool, keys: svc.service.keySource }, { batchSize: 6, concurrency: 2 });
    const operations = await Promise.all([
      ...[...rotatedIds].map((id) => rotate(id, `${id}-rotated`)),
      ...[...deleted].map((id) => remove(id)),
    ]);
    for (const response of operations) expect([200, 204]).toContain(response.status);
    expect((await rewrap).failed).toBe(0);
    // The run may finish before some API writes made under the new KEK anyway; nothing is left either way.
    expect(Object.keys(await rowsPerKek(svc.pool))).toEqual([kek3.kek.kekId]);

    for (const id of ids) {
      const read = await readSecret(id);
      if (deleted.has(id)) expect(read.status).toBe(404);
      else
        expect(bodyOf<ProvisionSecretJson>(read).provisionSecret).toBe(
          rotatedIds.has(id) ? `${id}-rotated` : secretFor(id),
        );
    }
  });
});
