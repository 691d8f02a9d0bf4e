import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { loadConfig } from '../../src/config';
import { startService, type RunningService } from '../../src/runtime';
import { capturedLogger } from '../support/log-capture';
import { freePort } from '../support/free-port';
import { startPostgresProcess, type PostgresProcess } from '../support/postgres-process';

// This file stops its database on purpose, so it runs its own server instead of the shared one.
describe('/readyz follows the database', () => {
  let database: PostgresProcess;
  let service: RunningService;
  const dataDir = join(mkdtempSync(join(tmpdir(), 'provsec-ready-')), 'pg');
  let databasePort: number;

  beforeAll(async () => {
    databasePort = await freePort();
    database = await startPostgresProcess(dataDir, databasePort);
    const config = loadConfig({
      NODE_ENV: 'test',
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: database.url,
      PROVSEC_STATE_DIR: join(dataDir, '..', 'state'),
    });
    service = await startService(config, capturedLogger().logger);
  }, 60_000);
  afterAll(async () => {
    await service?.stop();
    await database?.stop();
  });

  test('ready while the database answers; 503 with the reason once it stops; ready again after restart', async () => {
    const url = `http://127.0.0.1:${service.port}`;
    const ready = await request(url).get('/readyz');
    expect(ready.status).toBe(200);
    expect((ready.body as { checks: unknown }).checks).toMatchObject({
      database: { ok: true },
      migrations: { ok: true },
    });

    await database.stop();
    const down = await request(url).get('/readyz');
    expect(down.status).toBe(503);
    expect(down.headers['content-type']).toMatch(/application\/problem\+json/);
    const body = JSON.parse(down.text) as { detail: string; checks: Record<string, { ok: boolean }> };
    expect(body.detail).toMatch(/database/);
    expect(body.checks.database?.ok).toBe(false);
    // Liveness does not depend on the database: restarting the pod would not help.
    expect((await request(url).get('/healthz')).status).toBe(200);

    database = await startPostgresProcess(dataDir, databasePort);
    let recovered = 0;
    for (let attempt = 0; attempt < 20 && recovered !== 200; attempt++) {
      recovered = (await request(url).get('/readyz')).status;
      if (recovered !== 200) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(recovered).toBe(200);
  }, 60_000);
});
