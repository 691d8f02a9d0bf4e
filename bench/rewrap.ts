/**
 * `npm run bench:rewrap -- --rows N` (default 1,000,000): seed N real envelopes under KEK1, rotate
 * to KEK2, run rewrapAll, and print rows/s, peak RSS and where the time went. A benchmark, not a
 * test: it exits 0 whether or not the targets (25,000 rows/s, peak RSS < 200 MB, issue 15) are met.
 * Postgres: an embedded server of its own in a temp folder, or a fresh database on DATABASE_URL's
 * server (bench/rewrap-database.ts). Seeding runs in child processes (bench/rewrap-seed.ts), so
 * the peak RSS printed is the rewrap's alone.
 * Options: --batch-size, --concurrency, --crypto-threads, --keep-data (leave the embedded data dir),
 * --name NAME (also write the figures to bench/results/rewrap-NAME.json, with the machine, commit and
 * load averages: on a shared machine a figure means little without them).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Pool } from 'pg';
import { APP_ROOT, SQL_DIR } from '../src/app-root';
import { openSecret } from '../src/crypto/envelope';
import { importKek } from '../src/crypto/kek';
import { Keyring } from '../src/crypto/keyring';
import { runMigrations } from '../src/db/migrate';
import { rewrapAll, type RewrapBatchReport } from '../src/rotation/rewrap';
import { openBenchDatabase, serverCpuMs } from './rewrap-database';
import { describeMachine, gitCommit } from './proc-stats';
import { groupIdOf, secretOf, seedInChildren } from './rewrap-seed';

const TARGET_ROWS_PER_SECOND = 25_000;
const TARGET_PEAK_RSS_MB = 200;

// ---- The run ----

function mb(bytesOrKb: number, unit: 'kb' | 'b'): string {
  return `${(unit === 'kb' ? bytesOrKb / 1024 : bytesOrKb / 1024 / 1024).toFixed(0)} MB`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '1000000' },
      'batch-size': { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '2' },
      // As the command: one crypto thread beside the main thread when there is a second core.
      'crypto-threads': { type: 'string', default: availableParallelism() > 1 ? '1' : '0' },
      'keep-data': { type: 'boolean', default: false },
      name: { type: 'string' },
    },
  });
  const rows = Number(values.rows);
  const batchSize = Number(values['batch-size']);
  const concurrency = Number(values.concurrency);
  const cryptoThreads = Number(values['crypto-threads']);
  console.log(
    `provsec rewrap benchmark: ${rows} rows, batch ${batchSize}, ${concurrency} lanes, ${cryptoThreads} crypto threads; Node ${process.version}, ${cpus()[0]?.model ?? '?'} (${availableParallelism()} cores), load average ${loadavg()[0]?.toFixed(2)}`,
  );

  const loadAverageAtStart = loadavg();
  const database = await openBenchDatabase(values['keep-data']);
  const pool = new Pool({ connectionString: database.url, max: concurrency + 1 });
  // An idle connection the server closes must not crash the run (and is expected at shutdown).
  let closing = false;
  pool.on('error', (error) => {
    if (!closing) console.error(`idle database connection lost: ${error.message}`);
  });
  try {
    await runMigrations(pool, SQL_DIR);
    const kek1Bytes = randomBytes(32);
    const kek2Bytes = randomBytes(32);
    const secretSeed = randomBytes(32);
    const kek1 = importKek(kek1Bytes, 1);
    const kek2 = importKek(kek2Bytes, 2);

    let startedAt = performance.now();
    await seedInChildren(database.url, rows, kek1Bytes.toString('hex'), secretSeed.toString('hex'));
    const seedSeconds = (performance.now() - startedAt) / 1000;
    startedAt = performance.now();
    // As a long-lived table would be: statistics current and the visibility map set.
    await pool.query('VACUUM ANALYZE ota_groups');
    await pool.query('CHECKPOINT');
    console.log(
      `seeded ${rows} rows in ${seedSeconds.toFixed(1)} s (${Math.round(rows / seedSeconds)} rows/s), vacuum + checkpoint ${((performance.now() - startedAt) / 1000).toFixed(1)} s`,
    );
    await checkSample(
      pool,
      Keyring.single(kek1),
      secretSeed,
      rows,
      'seeded envelopes open with the real openSecret under KEK1',
    );

    // The rotation: KEK2 becomes current, KEK1 stays to unwrap.
    const keyring = Keyring.create([kek1, kek2], kek2.kekId);
    const keys = { currentKeyring: () => keyring, keyringFor: () => Promise.resolve(keyring) };
    const split = { claimMs: 0, cryptoMs: 0, writeMs: 0, commitMs: 0 };
    let lastLineAt = performance.now();
    const serverCpu = new Map<number, number>();
    const serverCpuBefore = serverCpuMs(database, serverCpu);
    const cpuBefore = process.cpuUsage();
    startedAt = performance.now();
    const result = await rewrapAll(
      { pool, keys },
      {
        batchSize,
        concurrency,
        cryptoThreads,
        onBatch: (report: RewrapBatchReport) => {
          split.claimMs += report.claimMs;
          split.cryptoMs += report.cryptoMs;
          split.writeMs += report.writeMs;
          split.commitMs += report.commitMs;
        },
        onProgress: (progress) => {
          const now = performance.now();
          if (now - lastLineAt < 5000) return;
          lastLineAt = now;
          serverCpuMs(database, serverCpu);
          console.log(
            `  ${progress.rewrapped}/${progress.total} rows, ${Math.round(progress.rewrapped / ((now - startedAt) / 1000))} rows/s, RSS ${mb(process.memoryUsage.rss(), 'b')} (heap ${mb(process.memoryUsage().heapTotal, 'b')}, buffers ${mb(process.memoryUsage().arrayBuffers, 'b')})`,
          );
        },
      },
    );
    const seconds = (performance.now() - startedAt) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const serverCpuUsed = serverCpuMs(database, serverCpu) - serverCpuBefore;
    const peakRssKb = process.resourceUsage().maxRSS;
    const rowsPerSecond = Math.round(result.rewrapped / seconds);

    /** Milliseconds (of wall or CPU time) spread over the rows rewrapped, in µs per row. */
    const microsPerRow = (ms: number) => (ms * 1000) / Math.max(result.rewrapped, 1);
    const busyMs = split.claimMs + split.cryptoMs + split.writeMs + split.commitMs;
    const share = (ms: number) => `${((ms / busyMs) * 100).toFixed(0)}% (${microsPerRow(ms).toFixed(1)} µs/row)`;
    console.log(
      `rewrapped ${result.rewrapped} rows in ${seconds.toFixed(1)} s: ${rowsPerSecond} rows/s; failed ${result.failed}; remaining ${result.remaining}; ${result.timings.batches} batches`,
    );
    console.log(`peak RSS ${mb(peakRssKb, 'kb')} (the rewrap process; seeding ran in child processes)`);
    console.log(
      `time split (wall time per phase, summed over ${concurrency} lanes, which overlap): claim SELECT ${share(split.claimMs)}, crypto ${share(split.cryptoMs)}, UPDATE ${share(split.writeMs)}, COMMIT ${share(split.commitMs)}`,
    );
    const nodeCpuUsPerRow = microsPerRow((cpu.user + cpu.system) / 1000);
    const serverUsPerRow = serverCpu.size > 0 ? microsPerRow(serverCpuUsed) : undefined;
    if (serverUsPerRow !== undefined) {
      console.log(
        `CPU per row: Node ${nodeCpuUsPerRow.toFixed(1)} µs (main + crypto threads), Postgres ${serverUsPerRow.toFixed(1)} µs: a ceiling of ${Math.round((availableParallelism() * 1e6) / (nodeCpuUsPerRow + serverUsPerRow))} rows/s on ${availableParallelism()} idle cores`,
      );
    } else {
      console.log(
        `CPU per row: Node ${nodeCpuUsPerRow.toFixed(1)} µs (main + crypto threads); Postgres not measured (remote server)`,
      );
    }
    await checkSample(
      pool,
      Keyring.single(kek2),
      secretSeed,
      rows,
      'rewrapped envelopes open under KEK2 alone, with the original secrets',
    );
    console.log(
      `target ${TARGET_ROWS_PER_SECOND} rows/s: ${rowsPerSecond >= TARGET_ROWS_PER_SECOND ? 'MET' : 'NOT MET'}; target peak RSS < ${TARGET_PEAK_RSS_MB} MB: ${peakRssKb / 1024 < TARGET_PEAK_RSS_MB ? 'MET' : 'NOT MET'}; load average now ${loadavg()[0]?.toFixed(2)}`,
    );
    if (values.name !== undefined) {
      const file = join(APP_ROOT, 'bench', 'results', `rewrap-${values.name}.json`);
      mkdirSync(join(APP_ROOT, 'bench', 'results'), { recursive: true });
      const results = {
        name: values.name,
        createdAt: new Date().toISOString(),
        gitCommit: gitCommit(),
        machine: describeMachine(),
        loadAverage: { atStart: loadAverageAtStart, atEnd: loadavg() },
        configuration: { rows, batchSize, concurrency, cryptoThreads },
        rewrapped: result.rewrapped,
        failed: result.failed,
        seconds,
        rowsPerSecond,
        peakRssBytes: peakRssKb * 1024,
        wallMicrosPerRowByPhase: {
          claim: microsPerRow(split.claimMs),
          crypto: microsPerRow(split.cryptoMs),
          update: microsPerRow(split.writeMs),
          commit: microsPerRow(split.commitMs),
        },
        cpuMicrosPerRow: {
          node: nodeCpuUsPerRow,
          postgres: serverUsPerRow ?? null,
        },
        targets: { rowsPerSecond: TARGET_ROWS_PER_SECOND, peakRssMb: TARGET_PEAK_RSS_MB },
      };
      writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
      console.log(`wrote ${file}`);
    }
    kek1Bytes.fill(0);
    kek2Bytes.fill(0);
  } finally {
    closing = true;
    await pool.end();
    await database.drop();
  }
}

/** Opens up to 1000 rows spread over the table with the real openSecret and compares the secret. */
async function checkSample(
  pool: Pool,
  keyring: Keyring,
  secretSeed: Buffer,
  rows: number,
  what: string,
): Promise<void> {
  const step = Math.max(1, Math.floor(rows / 1000));
  const ids = Array.from({ length: Math.ceil(rows / step) }, (_, index) => groupIdOf(index * step));
  const result = await pool.query<{ id: string; secret_version: number; provision_secret_envelope: Buffer }>(
    'SELECT id, secret_version, provision_secret_envelope FROM ota_groups WHERE id = ANY($1)',
    [ids],
  );
  for (const row of result.rows) {
    const secret = openSecret(
      row.provision_secret_envelope,
      { groupId: row.id, secretVersion: row.secret_version },
      keyring,
    );
    if (!Buffer.from(secret).equals(secretOf(secretSeed, row.id)))
      throw new Error(`sample check failed for ${row.id}: ${what}`);
  }
  if (result.rows.length !== ids.length)
    throw new Error(`sample check found ${result.rows.length} of ${ids.length} rows`);
  console.log(`check: ${result.rows.length} sampled ${what}`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`bench failed: ${(error as Error).stack ?? String(error)}`);
    process.exit(1);
  },
);
