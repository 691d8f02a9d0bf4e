/**
 * Key status: GET /v1/keys needs keys:admin and reports the KEK ids, the current one and the rows
 * each wraps; provsec_kek_rows exports the same counts. The counter caches for a few seconds and
 * never serves a failed count from its cache.
 */
import request from 'supertest';
import type { Pool } from 'pg';
import { createKekUsageCounter } from '../../src/rotation/kek-usage';
import { startTestService, type TestService } from '../support/test-service';
import { newKek, secretFor, waitFor } from './support/rotation-kit';

describe('GET /v1/keys and the provsec_kek_rows metric', () => {
  let svc: TestService;
  const kek1 = newKek(1);
  const kek2 = newKek(2);

  beforeAll(async () => {
    svc = await startTestService({ keyFileContent: { current: 1, keys: { '1': kek1.hex } } });
    const management = await svc.token('management-api');
    for (const id of ['usage-a', 'usage-b', 'usage-c']) {
      expect(
        (
          await request(svc.url)
            .post('/v1/device-groups')
            .set('Authorization', `Bearer ${management}`)
            .send({ id, provisionSecret: secretFor(id) })
        ).status,
      ).toBe(201);
    }
    svc.writeKeyFile({ current: 2, keys: { '1': kek1.hex, '2': kek2.hex } });
    await waitFor(() => svc.service.keySource.currentKeyring()?.current.kekId === kek2.kek.kekId, 'the swap to KEK2');
  });
  afterAll(() => svc.stop());

  test('without a token it is 401; without keys:admin it is 403', async () => {
    expect((await request(svc.url).get('/v1/keys')).status).toBe(401);
    const forbidden = await request(svc.url)
      .get('/v1/keys')
      .set('Authorization', `Bearer ${await svc.token('management-api')}`);
    expect(forbidden.status).toBe(403);
    expect((forbidden.body as { keys?: unknown }).keys).toBeUndefined();
  });

  test('with keys:admin it lists the KEK ids, which is current, and the rows each wraps (ids only, no key bytes)', async () => {
    const response = await request(svc.url)
      .get('/v1/keys')
      .set('Authorization', `Bearer ${await svc.token('key-admin')}`);
    expect(response.status).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.body).toMatchObject({
      source: { kind: 'file', state: 'ready' },
      currentKekId: kek2.kek.kekId,
      rowsNotUnderCurrent: 3,
      rowsUnderUnavailableKeks: 0,
    });
    const { keys } = response.body as { keys: unknown[] };
    expect(keys).toHaveLength(2);
    expect(keys).toEqual(
      expect.arrayContaining([
        { kekId: kek1.kek.kekId, versionLabel: 1, current: false, available: true, rows: 3 },
        { kekId: kek2.kek.kekId, versionLabel: 2, current: true, available: true, rows: 0 },
      ]),
    );
    expect(response.text).not.toContain(kek1.hex);
    expect(response.text).not.toContain(kek2.hex);
  });

  test('provsec_kek_rows reports the rows per KEK id', async () => {
    const metrics = await request(svc.url).get('/metrics');
    expect(metrics.text).toContain(`provsec_kek_rows{kek_id="${kek1.kek.kekId}"} 3`);
    expect(metrics.text).not.toContain(kek1.hex);
  });
});

describe('the rows-per-KEK counter', () => {
  test('answers from its cache for five seconds, recounts on request, and does not cache a failure', async () => {
    let queries = 0;
    let failNext = false;
    const pool = {
      query: () => {
        queries += 1;
        if (failNext) return Promise.reject(new Error('database unavailable'));
        return Promise.resolve({ rows: [{ kek_id: 'kek_a', rows: String(queries) }] });
      },
    } as unknown as Pool;
    let now = 0;
    const counter = createKekUsageCounter(pool, () => now);
    expect(await counter.usage()).toEqual([{ kekId: 'kek_a', rows: 1 }]);
    now = 4999;
    expect(await counter.usage()).toEqual([{ kekId: 'kek_a', rows: 1 }]);
    expect(await counter.usage({ fresh: true })).toEqual([{ kekId: 'kek_a', rows: 2 }]);
    now = 20_000;
    failNext = true;
    await expect(counter.usage()).rejects.toThrow('database unavailable');
    failNext = false;
    expect(await counter.usage()).toEqual([{ kekId: 'kek_a', rows: 4 }]);
  });
});
