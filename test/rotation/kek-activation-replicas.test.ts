/**
 * Delayed KEK activation across replicas: two service instances on one database, each with its own
 * key file (as each pod has its own Vault Agent). The first receives the new KEK version at once,
 * the second seconds later. Throughout, both keep reading every group; new writes move to the new
 * KEK only once the version is KEK_ACTIVATION_DELAY_SECONDS old, by which time both hold it.
 */
import request from 'supertest';
import { startTestService, type TestService } from '../support/test-service';
import { newKek, sleep, waitFor } from './support/rotation-kit';

const DELAY_SECONDS = 4;
const kek1 = newKek(1);
const kek2 = newKek(2);
let first: TestService;
let second: TestService;

beforeAll(async () => {
  const env = { KEK_ACTIVATION_DELAY_SECONDS: String(DELAY_SECONDS), SECRET_READ_RATE_LIMIT_PER_MINUTE: '1000000' };
  first = await startTestService({ keyFileContent: { current: 1, keys: { '1': kek1.hex } }, env });
  second = await startTestService({
    keyFileContent: { current: 1, keys: { '1': kek1.hex } },
    env: { ...env, DATABASE_URL: first.databaseUrl },
  });
}, 60_000);
afterAll(async () => {
  await second?.stop();
  await first?.stop();
});

async function create(svc: TestService, id: string): Promise<string> {
  const res = await request(svc.url)
    .post('/v1/device-groups')
    .set('Authorization', `Bearer ${await svc.token('management-api')}`)
    .send({ id, provisionSecret: `ps-${id}` });
  expect(res.status).toBe(201);
  return (res.body as { kekId: string }).kekId;
}

test('no read fails on either replica while the new KEK reaches them one after the other; writes move to it only after the delay', async () => {
  const ids: string[] = [];
  for (let index = 0; index < 4; index++) {
    ids.push(`act-${index}`);
    expect(await create(first, `act-${index}`)).toBe(kek1.kek.kekId);
  }

  // Both replicas read every group, over and over, until the end of the test.
  const failures: string[] = [];
  let reads = 0;
  let reading = true;
  const readers = [first, second].map(async (svc) => {
    const token = await svc.token('system:serviceaccount:provisioning:cert-worker');
    while (reading) {
      for (const id of [...ids]) {
        const res = await request(svc.url)
          .get(`/v1/device-groups/${id}/provision-secret`)
          .set('Authorization', `Bearer ${token}`);
        reads += 1;
        if (res.status !== 200 || (res.body as { provisionSecret: string }).provisionSecret !== `ps-${id}`)
          failures.push(`${svc === first ? 'first' : 'second'} ${id}: ${res.status}`);
      }
      await sleep(50);
    }
  });

  // Vault gets version 2; the first replica's agent renders it at once, with KV's created_time.
  const createdAt = new Date();
  const rotated = { current: 2, keys: { '1': kek1.hex, '2': kek2.hex }, createdAt: { '2': createdAt.toISOString() } };
  first.writeKeyFile(rotated);
  await waitFor(() => first.service.keySource.status().knownKekIds.length === 2, 'the first replica to load version 2');
  const keyStatus = await request(first.url)
    .get('/v1/keys')
    .set('Authorization', `Bearer ${await first.token('key-admin')}`);
  expect(keyStatus.body).toMatchObject({
    currentKekId: kek1.kek.kekId,
    pendingKek: {
      kekId: kek2.kek.kekId,
      kekVersion: 2,
      activatesAt: new Date(createdAt.getTime() + DELAY_SECONDS * 1000).toISOString(),
    },
  });

  // Known but not active: the first replica still seals under version 1, which the second can open.
  ids.push('act-early');
  expect(await create(first, 'act-early')).toBe(kek1.kek.kekId);
  await sleep(1500);
  ids.push('act-later');
  expect(await create(first, 'act-later')).toBe(kek1.kek.kekId);

  // The second replica's agent catches up well after the first, still inside the delay.
  second.writeKeyFile(rotated);
  await waitFor(
    () => second.service.keySource.status().knownKekIds.length === 2,
    'the second replica to load version 2',
  );

  // After the delay both seal under version 2.
  await waitFor(() => Date.now() >= createdAt.getTime() + DELAY_SECONDS * 1000 + 100, 'the activation delay', 10_000);
  ids.push('act-new-1', 'act-new-2');
  expect(await create(first, 'act-new-1')).toBe(kek2.kek.kekId);
  expect(await create(second, 'act-new-2')).toBe(kek2.kek.kekId);
  await sleep(500);

  reading = false;
  await Promise.all(readers);
  process.stdout.write(`KEK activation across replicas: ${reads} reads, ${failures.length} failed\n`);
  expect(failures).toEqual([]);
  expect(reads).toBeGreaterThan(100);
}, 60_000);
