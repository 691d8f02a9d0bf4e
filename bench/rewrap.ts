/**
 * `npm run bench:rewrap -- --rows N` (default 1,000,000): seed N real envelopes under KEK1, rotate
 * to KEK2, run rewrapAll, and print rows/s, peak RSS and where the time went. A benchmark, not a
 * test: it exits 0 whether or not the targets (20,000 rows/s, peak RSS < 200 MB) are met.
 * Postgres: an embedded server of its own in a temp folder, or a fresh database on DATABASE_URL's
 * server (created and dropped here). Seeding runs in a child process, so the peak RSS printed is
 * the rewrap's alone. Options: --batch-size, --concurrency, --crypto-threads, --keep-data.
 */
import { fork } from 'node:child_process';
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Pool } from 'pg';
import { SQL_DIR } from '../src/app-root';
import { encodeBindingContext, encodeDataKeyWrapAad, encodeSecretAad } from '../src/crypto/binding-context';
import { openSecret } from '../src/crypto/envelope';
import { ENVELOPE_FORMAT_V1, serializeEnvelopeV1 } from '../src/crypto/envelope-format';
import { importKek, kekIdToBytes, type KeyEncryptionKey } from '../src/crypto/kek';
import { Keyring } from '../src/crypto/keyring';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../src/db/embedded';
import { runMigrations } from '../src/db/migrate';
import { rewrapAll, type RewrapBatchReport } from '../src/rotation/rewrap';

const TARGET_ROWS_PER_SECOND = 20_000;
const TARGET_PEAK_RSS_MB = 200;
const SEED_CHUNK_ROWS = 20_000;
const SECRET_LENGTH_BYTES = 48;

// ---- Seeding (child process) ----

/** The secret of a row, derived from its id, so the check at the end needs no list of secrets. */
function secretOf(secretSeed: Buffer, groupId: string): Buffer {
  return createHmac('sha256', secretSeed).update(groupId).digest().subarray(0, SECRET_LENGTH_BYTES);
}

function groupIdOf(index: number): string {
  return `bench-${String(index).padStart(8, '0')}`;
}

function gcmEncrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, associatedData: Uint8Array): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 }).setAAD(associatedData);
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/**
 * The envelope sealSecret would make, built on node:crypto (4x faster than the module's noble
 * calls, which only matters for seeding a million rows). The parent opens a sample with the real
 * openSecret before timing anything, and the rewrap itself authenticates every row it touches.
 */
function sealForSeeding(secret: Uint8Array, groupId: string, kek: KeyEncryptionKey): Uint8Array {
  const boundContext = encodeBindingContext({ groupId, secretVersion: 1 });
  const kekIdBytes = kekIdToBytes(kek.kekId);
  const dataKey = randomBytes(32);
  const wrapNonce = randomBytes(12);
  const dataNonce = randomBytes(12);
  const envelope = serializeEnvelopeV1({
    formatVersion: ENVELOPE_FORMAT_V1,
    kekIdBytes,
    wrapNonce,
    wrappedDataKey: gcmEncrypt(kek.key, wrapNonce, dataKey, encodeDataKeyWrapAad(ENVELOPE_FORMAT_V1, boundContext, kekIdBytes)),
    dataNonce,
    secretCiphertext: gcmEncrypt(dataKey, dataNonce, secret, encodeSecretAad(ENVELOPE_FORMAT_V1, boundContext)),
  });
  dataKey.fill(0);
  return envelope;
}

/** Many rows per INSERT, the envelopes as one binary parameter (no bytea[] hex round trip). */
async function insertChunk(pool: Pool, start: number, end: number, kek: KeyEncryptionKey, secretSeed: Buffer): Promise<void> {
  const ids: string[] = [];
  const envelopes: Uint8Array[] = [];
  for (let index = start; index < end; index++) {
    const groupId = groupIdOf(index);
    ids.push(groupId);
    envelopes.push(sealForSeeding(secretOf(secretSeed, groupId), groupId, kek));
  }
  const packed = Buffer.concat(envelopes);
  const startsAt: number[] = [];
  const lengths: number[] = [];
  let offset = 0;
  for (const envelope of envelopes) {
    startsAt.push(offset + 1);
    lengths.push(envelope.length);
    offset += envelope.length;
  }
  await pool.query(
    `INSERT INTO ota_groups (id, provision_secret_envelope, kek_id, kek_version, secret_version)
     SELECT u.id, substring($2::bytea FROM u.starts_at FOR u.length), $3, $4, 1
       FROM unnest($1::text[], $5::int4[], $6::int4[]) AS u(id, starts_at, length)`,
    [ids, packed, kek.kekId, kek.versionLabel, startsAt, lengths],
  );
}

async function seedChild(): Promise<void> {
  const { databaseUrl, rows, kek1Hex, secretSeedHex } = JSON.parse(process.env.BENCH_SEED as string) as { databaseUrl: string; rows: number; kek1Hex: string; secretSeedHex: string };
  const kek1 = importKek(Buffer.from(kek1Hex, 'hex'), 1);
  const secretSeed = Buffer.from(secretSeedHex, 'hex');
  const pool = new Pool({ connectionString: databaseUrl, max: 2 });
  try {
    // Two chunks in flight: one is sealed here while Postgres inserts the other.
    const inFlight: Array<Promise<void>> = [];
    for (let start = 0; start < rows; start += SEED_CHUNK_ROWS) {
      if (inFlight.length >= 2) await inFlight.shift();
      inFlight.push(insertChunk(pool, start, Math.min(rows, start + SEED_CHUNK_ROWS), kek1, secretSeed));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(inFlight);
  } finally {
    await pool.end();
  }
}

function seedInChild(databaseUrl: string, rows: number, kek1Hex: string, secretSeedHex: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, ['--seed-child'], { env: { ...process.env, BENCH_SEED: JSON.stringify({ databaseUrl, rows, kek1Hex, secretSeedHex }) }, stdio: 'inherit' });
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`seeding failed (exit ${code})`))));
  });
}

// ---- Postgres for the bench ----

interface BenchDatabase {
  readonly url: string;
  /** Pids of the embedded server's processes (for CPU accounting); empty for a remote server. */
  serverPids(): number[];
  drop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function openBenchDatabase(keepData: boolean): Promise<BenchDatabase> {
  const name = `provsec_bench_${randomBytes(4).toString('hex')}`;
  let embedded: EmbeddedPostgresHandle | undefined;
  let stateDir: string | undefined;
  let adminUrl = process.env.DATABASE_URL;
  if (adminUrl === undefined) {
    stateDir = mkdtempSync(join(tmpdir(), 'provsec-bench-'));
    embedded = await startEmbeddedPostgres({ dataDir: join(stateDir, 'pg'), port: await freePort() });
    adminUrl = embedded.adminUrl;
  }
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const dataDir = stateDir && join(stateDir, 'pg');
  return {
    url: url.toString(),
    serverPids: () => (dataDir ? postgresPids(dataDir) : []),
    async drop() {
      if (embedded) {
        await embedded.stop();
        if (!keepData && stateDir) rmSync(stateDir, { recursive: true, force: true });
        return;
      }
      const cleanup = new Client({ connectionString: adminUrl });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${name}`);
      await cleanup.end();
    },
  };
}

/** The postmaster (first line of postmaster.pid) and its children. */
function postgresPids(dataDir: string): number[] {
  const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const pids = [postmaster];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster) pids.push(Number(entry));
    } catch {
      // The process ended between readdir and read.
    }
  }
  return pids;
}

/** CPU milliseconds (user + system) a process has used, from /proc (clock ticks of 10 ms). */
function processCpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

function serverCpuMs(database: BenchDatabase, known: Map<number, number>): number {
  // Backends come and go: remember each pid's last reading so an exited one still counts.
  for (const pid of database.serverPids()) known.set(pid, Math.max(known.get(pid) ?? 0, processCpuMs(pid)));
  return [...known.values()].reduce((sum, ms) => sum + ms, 0);
}

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
      'crypto-threads': { type: 'string', default: String(Math.min(2, availableParallelism())) },
      'keep-data': { type: 'boolean', default: false },
    },
  });
  const rows = Number(values.rows);
  const batchSize = Number(values['batch-size']);
  const concurrency = Number(values.concurrency);
  const cryptoThreads = Number(values['crypto-threads']);
  console.log(`provsec rewrap benchmark: ${rows} rows, batch ${batchSize}, ${concurrency} lanes, ${cryptoThreads} crypto threads; Node ${process.version}, ${cpus()[0]?.model ?? '?'} (${availableParallelism()} cores), load average ${loadavg()[0]?.toFixed(2)}`);

  const database = await openBenchDatabase(values['keep-data']);
  const pool = new Pool({ connectionString: database.url, max: concurrency + 1 });
  try {
    await runMigrations(pool, SQL_DIR);
    const kek1Bytes = randomBytes(32);
    const kek2Bytes = randomBytes(32);
    const secretSeed = randomBytes(32);
    const kek1 = importKek(kek1Bytes, 1);
    const kek2 = importKek(kek2Bytes, 2);

    let startedAt = performance.now();
    await seedInChild(database.url, rows, kek1Bytes.toString('hex'), secretSeed.toString('hex'));
    const seedSeconds = (performance.now() - startedAt) / 1000;
    startedAt = performance.now();
    // As a long-lived table would be: statistics current and the visibility map set.
    await pool.query('VACUUM ANALYZE ota_groups');
    await pool.query('CHECKPOINT');
    console.log(`seeded ${rows} rows in ${seedSeconds.toFixed(1)} s (${Math.round(rows / seedSeconds)} rows/s), vacuum + checkpoint ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);
    await checkSample(pool, Keyring.single(kek1), secretSeed, rows, 'seeded envelopes open with the real openSecret under KEK1');

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
          console.log(`  ${progress.rewrapped}/${progress.total} rows, ${Math.round(progress.rewrapped / ((now - startedAt) / 1000))} rows/s, RSS ${mb(process.memoryUsage.rss(), 'b')}`);
        },
      },
    );
    const seconds = (performance.now() - startedAt) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const serverCpuUsed = serverCpuMs(database, serverCpu) - serverCpuBefore;
    const peakRssKb = process.resourceUsage().maxRSS;
    const rowsPerSecond = Math.round(result.rewrapped / seconds);

    const busyMs = split.claimMs + split.cryptoMs + split.writeMs + split.commitMs;
    const share = (ms: number) => `${((ms / busyMs) * 100).toFixed(0)}% (${((ms * 1000) / Math.max(result.rewrapped, 1)).toFixed(1)} µs/row)`;
    console.log(`rewrapped ${result.rewrapped} rows in ${seconds.toFixed(1)} s: ${rowsPerSecond} rows/s; failed ${result.failed}; remaining ${result.remaining}; ${result.timings.batches} batches`);
    console.log(`peak RSS ${mb(peakRssKb, 'kb')} (the rewrap process; seeding ran in a child)`);
    console.log(`time split (wall time per phase, summed over ${concurrency} lanes, which overlap): claim SELECT ${share(split.claimMs)}, crypto ${share(split.cryptoMs)}, UPDATE ${share(split.writeMs)}, COMMIT ${share(split.commitMs)}`);
    const nodeCpuUsPerRow = (cpu.user + cpu.system) / Math.max(result.rewrapped, 1);
    if (serverCpu.size > 0) {
      const serverUsPerRow = (serverCpuUsed * 1000) / Math.max(result.rewrapped, 1);
      console.log(`CPU per row: Node ${nodeCpuUsPerRow.toFixed(1)} µs (main + crypto threads), Postgres ${serverUsPerRow.toFixed(1)} µs: a ceiling of ${Math.round((availableParallelism() * 1e6) / (nodeCpuUsPerRow + serverUsPerRow))} rows/s on ${availableParallelism()} idle cores`);
    } else {
      console.log(`CPU per row: Node ${nodeCpuUsPerRow.toFixed(1)} µs (main + crypto threads); Postgres not measured (remote server)`);
    }
    await checkSample(pool, Keyring.single(kek2), secretSeed, rows, 'rewrapped envelopes open under KEK2 alone, with the original secrets');
    console.log(`target ${TARGET_ROWS_PER_SECOND} rows/s: ${rowsPerSecond >= TARGET_ROWS_PER_SECOND ? 'MET' : 'NOT MET'}; target peak RSS < ${TARGET_PEAK_RSS_MB} MB: ${peakRssKb / 1024 < TARGET_PEAK_RSS_MB ? 'MET' : 'NOT MET'}; load average now ${loadavg()[0]?.toFixed(2)}`);
    kek1Bytes.fill(0);
    kek2Bytes.fill(0);
  } finally {
    await pool.end();
    await database.drop();
  }
}

/** Opens up to 1000 rows spread over the table with the real openSecret and compares the secret. */
async function checkSample(pool: Pool, keyring: Keyring, secretSeed: Buffer, rows: number, what: string): Promise<void> {
  const step = Math.max(1, Math.floor(rows / 1000));
  const ids = Array.from({ length: Math.ceil(rows / step) }, (_, index) => groupIdOf(index * step));
  const result = await pool.query<{ id: string; secret_version: number; provision_secret_envelope: Buffer }>('SELECT id, secret_version, provision_secret_envelope FROM ota_groups WHERE id = ANY($1)', [ids]);
  for (const row of result.rows) {
    const secret = openSecret(row.provision_secret_envelope, { groupId: row.id, secretVersion: row.secret_version }, keyring);
    if (!Buffer.from(secret).equals(secretOf(secretSeed, row.id))) throw new Error(`sample check failed for ${row.id}: ${what}`);
  }
  if (result.rows.length !== ids.length) throw new Error(`sample check found ${result.rows.length} of ${ids.length} rows`);
  console.log(`check: ${result.rows.length} sampled ${what}`);
}

if (process.argv.includes('--seed-child')) {
  seedChild().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(`seeding failed: ${(error as Error).message}`);
      process.exit(1);
    },
  );
} else {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(`bench failed: ${(error as Error).stack ?? String(error)}`);
      process.exit(1);
    },
  );
}
