/**
 * Seeding for the rewrap benchmark (bench/rewrap.ts): N rows of real envelopes sealed under KEK1,
 * each bound to its own id, inserted many rows per statement by one child process per core (so the
 * benchmark's own peak RSS is the rewrap's alone). Run as a child: `node rewrap-seed.js` with
 * BENCH_SEED in the environment.
 */
import { fork } from 'node:child_process';
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Pool } from 'pg';
import { encodeBindingContext, encodeDataKeyWrapAad, encodeSecretAad } from '../src/crypto/binding-context';
import { ENVELOPE_FORMAT_V1, serializeEnvelopeV1 } from '../src/crypto/envelope-format';
import { importKek, kekIdToBytes, type KeyEncryptionKey } from '../src/crypto/kek';

const SEED_CHUNK_ROWS = 20_000;
const SECRET_LENGTH_BYTES = 48;

/** The secret of a row, derived from its id, so the check at the end needs no list of secrets. */
export function secretOf(secretSeed: Buffer, groupId: string): Buffer {
  return createHmac('sha256', secretSeed).update(groupId).digest().subarray(0, SECRET_LENGTH_BYTES);
}

export function groupIdOf(index: number): string {
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
    wrappedDataKey: gcmEncrypt(
      kek.key,
      wrapNonce,
      dataKey,
      encodeDataKeyWrapAad(ENVELOPE_FORMAT_V1, boundContext, kekIdBytes),
    ),
    dataNonce,
    secretCiphertext: gcmEncrypt(dataKey, dataNonce, secret, encodeSecretAad(ENVELOPE_FORMAT_V1, boundContext)),
  });
  dataKey.fill(0);
  return envelope;
}

/** Many rows per INSERT, the envelopes as one binary parameter (no bytea[] hex round trip). */
async function insertChunk(
  pool: Pool,
  start: number,
  end: number,
  kek: KeyEncryptionKey,
  secretSeed: Buffer,
): Promise<void> {
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
    [ids, packed, kek.kekId, kek.kekVersion, startsAt, lengths],
  );
}

async function seedChild(): Promise<void> {
  const { databaseUrl, from, to, kek1Hex, secretSeedHex } = JSON.parse(process.env.BENCH_SEED as string) as {
    databaseUrl: string;
    from: number;
    to: number;
    kek1Hex: string;
    secretSeedHex: string;
  };
  const kek1 = importKek(Buffer.from(kek1Hex, 'hex'), 1);
  const secretSeed = Buffer.from(secretSeedHex, 'hex');
  const pool = new Pool({ connectionString: databaseUrl, max: 2 });
  try {
    // Two chunks in flight: one is sealed here while Postgres inserts the other.
    const inFlight: Array<Promise<void>> = [];
    for (let start = from; start < to; start += SEED_CHUNK_ROWS) {
      if (inFlight.length >= 2) await inFlight.shift();
      inFlight.push(insertChunk(pool, start, Math.min(to, start + SEED_CHUNK_ROWS), kek1, secretSeed));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(inFlight);
  } finally {
    await pool.end();
  }
}

/** Seeds in one child process per core, each an id range of its own. */
export async function seedInChildren(
  databaseUrl: string,
  rows: number,
  kek1Hex: string,
  secretSeedHex: string,
): Promise<void> {
  const children = Math.max(1, Math.min(availableParallelism(), Math.ceil(rows / SEED_CHUNK_ROWS)));
  const rowsPerChild = Math.ceil(rows / children);
  await Promise.all(
    Array.from({ length: children }, (_, index) => {
      const seed = {
        databaseUrl,
        from: index * rowsPerChild,
        to: Math.min(rows, (index + 1) * rowsPerChild),
        kek1Hex,
        secretSeedHex,
      };
      return new Promise<void>((resolve, reject) => {
        const child = fork(__filename, [], {
          env: { ...process.env, BENCH_SEED: JSON.stringify(seed) },
          stdio: 'inherit',
        });
        child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`seeding failed (exit ${code})`))));
      });
    }),
  );
}

if (require.main === module) {
  seedChild().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(`seeding failed: ${(error as Error).message}`);
      process.exit(1);
    },
  );
}
