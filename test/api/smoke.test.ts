import request from 'supertest';
import { startTestService, type TestService } from '../support/test-service';

describe('API smoke: create, read as a worker, rotate, delete', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService();
  });
  afterAll(() => svc.stop());

  test('the happy path end to end', async () => {
    const management = await svc.token('management-api');
    const worker = await svc.token('system:serviceaccount:provisioning:cert-worker');
    const created = await request(svc.url)
      .post('/v1/device-groups')
      .set('Authorization', `Bearer ${management}`)
      .send({ id: 'fleet-a.1', name: 'Fleet A', provisionSecret: 'ps-smoke-1' });
    expect(created.status).toBe(201);
    const read = await request(svc.url)
      .get('/v1/device-groups/fleet-a.1/provision-secret')
      .set('Authorization', `Bearer ${worker}`);
    expect(read.status).toBe(200);
    expect(read.body).toEqual({ id: 'fleet-a.1', provisionSecret: 'ps-smoke-1', secretVersion: 1 });
    expect(read.headers['cache-control']).toBe('no-store');
    const ready = await request(svc.url).get('/readyz');
    expect(ready.status).toBe(200);
  });
});
