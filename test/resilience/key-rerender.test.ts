/**
 * The key file re-rendered under load, as the Vault Agent does when the KEK is rotated in Vault.
 * While workers create groups, read secrets and rotate secrets, the single-key file becomes a
 * rotated keyring three times: by rename (the agent's way), by a slow in-place rewrite (a reader
 * can catch the file empty or half written), and by a plain in-place rewrite.
 * Proves: zero errors for the callers; a half-written file is refused and the last good keyring
 * keeps serving; new secrets go under the new current KEK as soon as it is loaded, and old rows
 * still open.
 */
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { importKekFromHex } from '../../src/crypto/kek';
import { describeFindings, LeakEvidence } from '../support/leak-sweep';
import { randomKekHex, startTestService, type TestService } from '../support/test-service';
import {
  type ApiClient,
  apiClient,
  newSecret,
  type Outcome,
  runWorkers,
  statusOf,
  waitUntil,
  readOneOf,
} from './support/api-client';

const WORKER = 'system:serviceaccount:provisioning:cert-worker';
const WORKERS = 6;

interface Attempt {
  readonly action: 'create' | 'read' | 'rotate';
  readonly groupId: string;
  readonly startedAtMs: number;
  readonly outcome: Outcome;
}

const kekIdOf = (hex: string) => importKekFromHex(hex).kekId;

describe('key file re-rendered with a rotated keyring under load', () => {
  const evidence = new LeakEvidence();
  const keyHexByVersion = new Map([1, 2, 3, 4].map((version) => [version, randomKekHex()]));
  const keyHex = (version: number) => keyHexByVersion.get(version) as string;
  let svc: TestService;
  let client: ApiClient;

  beforeAll(async () => {
    svc = await startTestService({
      keyFileContent: { key: keyHex(1) },
      env: { SECRET_READ_RATE_LIMIT_PER_MINUTE: '1000000' },
    });
    client = apiClient(svc.url, { evidence });
    for (const [version, hex] of keyHexByVersion) evidence.keyMaterial(`kek-v${version}`, hex);
    evidence.logs('service', () => svc.logs());
  }, 30_000);

  afterAll(async () => {
    client?.close();
    await svc?.stop();
  });

  /** The keyring file an agent would render after `current` rotations, with every earlier version. */
  function keyringFile(current: number): string {
    const keys = Object.fromEntries(
      [...keyHexByVersion].filter(([version]) => version <= current).map(([version, hex]) => [String(version), hex]),
    );
    return JSON.stringify({ current, keys });
  }

  const currentKekId = () => svc.service.keySource.status().currentKekId;

  test('reads, creations and rotations see zero errors while the key file is replaced by rename and rewritten in place', async () => {
    const management = await svc.token('management-api');
    const worker = await svc.token(WORKER);
    /** Every secret each group has held, oldest first. */
    const history = new Map<string, string[]>();
    /** Groups whose creation was acknowledged: the only ones a read may expect to find. */
    const readable: string[] = [];
    const remember = (id: string, secret: string) => {
      evidence.storedSecret(id, secret);
      history.set(id, [...(history.get(id) ?? []), secret]);
    };
    for (let index = 0; index < WORKERS; index += 1) {
      const id = `rerender-own-${index}`;
      const secret = newSecret(id);
      remember(id, secret);
      expect(
        statusOf(
          await client.send('POST', '/v1/device-groups', { token: management, json: { id, provisionSecret: secret } }),
        ),
      ).toBe(201);
      readable.push(id);
    }

    let stop = false;
    const attempts: Attempt[] = [];
    const wrongReads: string[] = [];
    const load = runWorkers(
      WORKERS,
      () => stop,
      async (workerIndex, iteration) => {
        const startedAtMs = Date.now();
        let attempt: Attempt;
        if (iteration % 3 === 0) {
          const id = `rerender-w${workerIndex}-${iteration}`;
          const secret = newSecret(id);
          remember(id, secret);
          attempt = {
            action: 'create',
            groupId: id,
            startedAtMs,
            outcome: await client.send('POST', '/v1/device-groups', {
              token: management,
              json: { id, provisionSecret: secret },
            }),
          };
          if (statusOf(attempt.outcome) === 201) readable.push(id);
        } else if (iteration % 3 === 1) {
          const read = await readOneOf(
            client,
            worker,
            readable,
            { workerIndex, iteration },
            (id, secret) => history.get(id)?.includes(secret) === true,
          );
          if (read.wrongSecret) wrongReads.push(read.id);
          attempt = { action: 'read', groupId: read.id, startedAtMs, outcome: read.outcome };
        } else {
          // Each worker rotates only its own group, so no two rotations race (that would be a fair 409).
          const id = `rerender-own-${workerIndex}`;
          const secret = newSecret(id);
          remember(id, secret);
          attempt = {
            action: 'rotate',
            groupId: id,
            startedAtMs,
            outcome: await client.send('PUT', `/v1/device-groups/${id}/provision-secret`, {
              token: management,
              json: { provisionSecret: secret },
            }),
          };
        }
        attempts.push(attempt);
      },
    );
    const succeeded = () =>
      attempts.filter((attempt) => statusOf(attempt.outcome) === 200 || statusOf(attempt.outcome) === 201).length;
    const loadFor = async (moreSuccesses: number) => {
      const target = succeeded() + moreSuccesses;
      await waitUntil(`${moreSuccesses} more requests succeed`, () => succeeded() >= target, 15_000);
    };
    /** When each key version was confirmed current (creations started after it must use it). */
    const confirmedAtMs = new Map<number, number>();
    const expectCurrent = async (version: number) => {
      await waitUntil(`key version ${version} is current`, () => currentKekId() === kekIdOf(keyHex(version)), 10_000);
      confirmedAtMs.set(version, Date.now());
    };

    await loadFor(60);
    // 1. The agent's way: render to a temp file, rename over the key file.
    svc.writeKeyFile(keyringFile(2));
    await expectCurrent(2);
    await loadFor(60);

    // 2. A slow in-place rewrite: truncated and half written, held there until the service has read
    //    that half file and refused it (while requests keep flowing), then completed.
    const refusals = () => svc.logs().split('keeping the last good keyring').length - 1;
    const refusalsBefore = refusals();
    const rotated = keyringFile(3);
    const descriptor = openSync(svc.keyFile, 'w');
    writeSync(descriptor, rotated.slice(0, Math.floor(rotated.length / 2)));
    await waitUntil(
      'the service reads the half-written file and refuses it',
      () => refusals() > refusalsBefore,
      15_000,
    );
    await loadFor(30);
    expect(currentKekId()).toBe(kekIdOf(keyHex(2)));
    writeSync(descriptor, rotated.slice(Math.floor(rotated.length / 2)));
    closeSync(descriptor);
    await expectCurrent(3);
    const halfWrittenRefusals = refusals() - refusalsBefore;
    await loadFor(60);

    // 3. A plain in-place rewrite (truncate and write in one call).
    writeFileSync(svc.keyFile, keyringFile(4));
    await expectCurrent(4);
    await loadFor(60);
    stop = true;
    await load;

    const failures = attempts.filter(
      (attempt) => !(statusOf(attempt.outcome) === 200 || statusOf(attempt.outcome) === 201),
    );
    expect(
      failures.map(
        (attempt) =>
          `${attempt.action} ${attempt.groupId}: ${statusOf(attempt.outcome)} ${attempt.outcome.kind === 'response' ? attempt.outcome.body.slice(0, 200) : ''}`,
      ),
    ).toEqual([]);
    expect(wrongReads).toEqual([]);

    // Creations that started after a version was confirmed current were sealed under that KEK or a later one.
    const rows = await svc.pool.query<{ id: string; kek_id: string }>('SELECT id, kek_id FROM ota_groups');
    const kekIdById = new Map(rows.rows.map((row) => [row.id, row.kek_id]));
    const versionOfKekId = new Map([...keyHexByVersion].map(([version, hex]) => [kekIdOf(hex), version]));
    const staleSeals: string[] = [];
    for (const attempt of attempts.filter((candidate) => candidate.action !== 'read')) {
      const version = versionOfKekId.get(kekIdById.get(attempt.groupId) ?? '') ?? 0;
      const newestConfirmedBeforeStart = Math.max(
        1,
        ...[...confirmedAtMs].filter(([, at]) => at <= attempt.startedAtMs).map(([confirmed]) => confirmed),
      );
      if (attempt.action === 'create' && version < newestConfirmedBeforeStart)
        staleSeals.push(`${attempt.groupId} under v${version}, v${newestConfirmedBeforeStart} was current`);
    }
    expect(staleSeals).toEqual([]);
    expect(rows.rows.filter((row) => !versionOfKekId.has(row.kek_id))).toEqual([]);
    expect(rows.rows.some((row) => row.kek_id === kekIdOf(keyHex(1)))).toBe(true);
    expect(rows.rows.some((row) => row.kek_id === kekIdOf(keyHex(4)))).toBe(true);

    // Every group, under whichever KEK, opens to its latest secret.
    for (const [id, secrets] of history) {
      const read = await client.send('GET', `/v1/device-groups/${id}/provision-secret`, { token: worker });
      expect({
        id,
        status: statusOf(read),
        secret:
          read.kind === 'response'
            ? (JSON.parse(read.body) as { provisionSecret?: string }).provisionSecret
            : undefined,
      }).toEqual({ id, status: 200, secret: secrets[secrets.length - 1] });
    }
    const perAction = (action: Attempt['action']) => attempts.filter((attempt) => attempt.action === action).length;
    process.stdout.write(
      `key re-render: ${attempts.length} requests (${perAction('create')} creates, ${perAction('read')} reads, ${perAction('rotate')} rotations), 0 errors; ` +
        `rows per key version ${JSON.stringify(Object.fromEntries([1, 2, 3, 4].map((v) => [v, rows.rows.filter((row) => versionOfKekId.get(row.kek_id) === v).length])))}; half-written file refused ${halfWrittenRefusals}x\n`,
    );
  }, 60_000);

  test('leak sweep: no secret or key bytes in the logs, tables or responses, except authorized secret reads', async () => {
    const report = await evidence.sweep([{ label: 'rerender', pool: svc.pool }]);
    expect(describeFindings(report.findings)).toBe('');
    expect(report.counts.authorizedReads).toBeGreaterThan(0);
  }, 30_000);
});
