/**
 * The background worker (REWRAP_WORKER_ENABLED=true): after a rotation of the key file it moves
 * every row to the new KEK by itself, and on its interval it picks up rows that a replica still on
 * the old keyring wrote later.
 */
import request from 'supertest';
import { Keyring, sealSecret } from '../../src/crypto';
import { startTestService, type TestService } from '../support/test-service';
import { newKek, rowsPerKek, secretFor, waitFor } from './support/rotation-kit';
import { createDeviceGroupStore } from '../../src/store/device-group-store';
import { bodyOf, type ProvisionSecretJson } from '../api/support/api-client';

describe('the background rewrap worker', () => {
  let svc: TestService;
  const kek1 = newKek(1);
  const kek2 = newKek(2);

  beforeAll(async () => {
    svc = await startTestService({
      keyFileContent: { current: 1, keys: { '1': kek1.hex } },
      env: { REWRAP_WORKER_ENABLED: 'true', REWRAP_INTERVAL_MS: '1000', REWRAP_BATCH_SIZE: '3' },
    });
  });
  afterAll(() => svc.stop());

  test('after a rotation it rewraps every row by itself, then keeps up with rows written under the old KEK later', async () => {
    const management = await svc.token('management-api');
    for (let index = 0; index < 10; index++) {
      const id = `bg-${index}`;
      expect(
        (
          await request(svc.url)
            .post('/v1/device-groups')
            .set('Authorization', `Bearer ${management}`)
            .send({ id, provisionSecret: secretFor(id) })
        ).status,
      ).toBe(201);
    }
    expect(await rowsPerKek(svc.pool)).toEqual({ [kek1.kek.kekId]: 10 });

    svc.writeKeyFile({ current: 2, keys: { '1': kek1.hex, '2': kek2.hex } });
    await waitFor(
      async () => {
        const counts = await rowsPerKek(svc.pool);
        return counts[kek2.kek.kekId] === 10 && Object.keys(counts).length === 1;
      },
      'the worker to rewrap every row',
      15_000,
    );
    // The pass logs once it has recounted, a moment after its last batch committed.
    await waitFor(() => svc.logs().includes('rewrap pass finished'), 'the pass to log its summary');

    // A replica that has not reloaded yet still seals under KEK1.
    const lagging = sealSecret(
      Buffer.from(secretFor('bg-late')),
      { groupId: 'bg-late', secretVersion: 1 },
      Keyring.single(kek1.kek),
    );
    // Through the store a replica writes with (its secret-history record included).
    await createDeviceGroupStore(svc.pool).insert(
      { id: 'bg-late', name: null, sealed: { envelope: lagging.envelope, kekId: kek1.kek.kekId, kekVersion: 1 } },
      { requestId: 'lagging-replica', actorIssuer: null, actorSubject: null, clientAddress: null },
    );
    await waitFor(
      async () => (await rowsPerKek(svc.pool))[kek1.kek.kekId] === undefined,
      'the next interval to pick up the late row',
      10_000,
    );

    svc.writeKeyFile({ current: 2, keys: { '2': kek2.hex } });
    await waitFor(() => svc.service.keySource.status().knownKekIds.length === 1, 'KEK1 to be retired');
    const worker = await svc.token('system:serviceaccount:provisioning:cert-worker');
    for (const id of ['bg-0', 'bg-9', 'bg-late']) {
      const read = await request(svc.url)
        .get(`/v1/device-groups/${id}/provision-secret`)
        .set('Authorization', `Bearer ${worker}`);
      expect(bodyOf<ProvisionSecretJson>(read).provisionSecret).toBe(secretFor(id));
    }
  });
});
