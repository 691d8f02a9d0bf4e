/**
 * `npm run bench:crypto`: seal, open and rewrap of a 64-byte secret, for the module (@noble/ciphers)
 * and for the same scheme and bytes on node:crypto (OpenSSL, AES-NI), in one run.
 * A benchmark, not a test: it prints figures and the 50 µs open target, and exits 0 either way.
 * Build and run: `tsc -p bench/tsconfig.json && node dist/bench/crypto.js` (no ts-node needed).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { aes256GcmDecrypt } from '../src/crypto/aes-gcm';
import {
  type BindingContext,
  type EncodedBindingContext,
  encodeBindingContext,
  encodeDataKeyWrapAad,
  encodeSecretAad,
} from '../src/crypto/binding-context';
import { openSecret, rewrapEnvelope, sealSecret } from '../src/crypto/envelope';
import { ENVELOPE_FORMAT_V1, parseEnvelope, serializeEnvelopeV1 } from '../src/crypto/envelope-format';
import { type KeyEncryptionKey, importKek, kekIdFromBytes, kekIdToBytes } from '../src/crypto/kek';
import { Keyring } from '../src/crypto/keyring';

const OPEN_TARGET_MEDIAN_MICROSECONDS = 50;
const REWRAP_TARGET_ROWS_PER_SECOND = 20_000;
const SAMPLES = 20_000;
const WARMUP_OPERATIONS = 2_000;
/** The machines are shared: each figure is the best of several rounds, and every round is printed. */
const ROUNDS = 3;

// ---- The same scheme on node:crypto: same AADs, same byte layout, OpenSSL's AES-256-GCM. ----

function nodeEncrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  associatedData: Uint8Array,
): Uint8Array {
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 }).setAAD(associatedData);
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

function nodeDecrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertextWithTag: Uint8Array,
  associatedData: Uint8Array,
): Uint8Array {
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 }).setAAD(associatedData);
  decipher.setAuthTag(ciphertextWithTag.subarray(ciphertextWithTag.length - 16));
  return Buffer.concat([
    decipher.update(ciphertextWithTag.subarray(0, ciphertextWithTag.length - 16)),
    decipher.final(),
  ]);
}

function nodeWrap(dataKey: Uint8Array, kek: KeyEncryptionKey, boundContext: EncodedBindingContext) {
  const kekIdBytes = kekIdToBytes(kek.kekId);
  const wrapNonce = randomBytes(12);
  return {
    kekIdBytes,
    wrapNonce,
    wrappedDataKey: nodeEncrypt(
      kek.key,
      wrapNonce,
      dataKey,
      encodeDataKeyWrapAad(ENVELOPE_FORMAT_V1, boundContext, kekIdBytes),
    ),
  };
}

function nodeUnwrap(envelope: Uint8Array, boundContext: EncodedBindingContext, keyring: Keyring) {
  const parsed = parseEnvelope(envelope);
  const kek = keyring.decryptionKey(kekIdFromBytes(parsed.kekIdBytes));
  const dataKey = nodeDecrypt(
    kek.key,
    parsed.wrapNonce,
    parsed.wrappedDataKey,
    encodeDataKeyWrapAad(parsed.formatVersion, boundContext, parsed.kekIdBytes),
  );
  return { parsed, dataKey };
}

function nodeSeal(plaintext: Uint8Array, context: BindingContext, keyring: Keyring): Uint8Array {
  const boundContext = encodeBindingContext(context);
  const dataKey = randomBytes(32);
  const dataNonce = randomBytes(12);
  try {
    const secretCiphertext = nodeEncrypt(
      dataKey,
      dataNonce,
      plaintext,
      encodeSecretAad(ENVELOPE_FORMAT_V1, boundContext),
    );
    return serializeEnvelopeV1({
      formatVersion: ENVELOPE_FORMAT_V1,
      ...nodeWrap(dataKey, keyring.current, boundContext),
      dataNonce,
      secretCiphertext,
    });
  } finally {
    dataKey.fill(0);
  }
}

function nodeOpen(envelope: Uint8Array, context: BindingContext, keyring: Keyring): Uint8Array {
  const boundContext = encodeBindingContext(context);
  const { parsed, dataKey } = nodeUnwrap(envelope, boundContext, keyring);
  try {
    return nodeDecrypt(
      dataKey,
      parsed.dataNonce,
      parsed.secretCiphertext,
      encodeSecretAad(parsed.formatVersion, boundContext),
    );
  } finally {
    dataKey.fill(0);
  }
}

function nodeRewrap(envelope: Uint8Array, context: BindingContext, keyring: Keyring): Uint8Array {
  const boundContext = encodeBindingContext(context);
  const { parsed, dataKey } = nodeUnwrap(envelope, boundContext, keyring);
  try {
    return serializeEnvelopeV1({ ...parsed, ...nodeWrap(dataKey, keyring.current, boundContext) });
  } finally {
    dataKey.fill(0);
  }
}

// ---- Measurement ----

interface Figures {
  opsPerSecond: number;
  medianMicroseconds: number;
  p99Microseconds: number;
}

function measureOnce(operation: () => unknown): Figures {
  for (let i = 0; i < WARMUP_OPERATIONS; i++) operation();
  // Throughput: one clock read around many operations.
  const started = process.hrtime.bigint();
  for (let i = 0; i < SAMPLES; i++) operation();
  const opsPerSecond = SAMPLES / (Number(process.hrtime.bigint() - started) / 1e9);
  // Latency: one clock read pair per operation (adds ~0.1 µs to each sample).
  const samples = new Float64Array(SAMPLES);
  for (let i = 0; i < SAMPLES; i++) {
    const before = process.hrtime.bigint();
    operation();
    samples[i] = Number(process.hrtime.bigint() - before) / 1e3;
  }
  samples.sort();
  return {
    opsPerSecond,
    medianMicroseconds: samples[SAMPLES >> 1]!,
    p99Microseconds: samples[Math.floor(SAMPLES * 0.99)]!,
  };
}

/** Best of ROUNDS (other processes only ever add time); `rounds` keeps each round's median for the printout. */
function measure(operation: () => unknown): Figures & { roundMedians: number[] } {
  const rounds = Array.from({ length: ROUNDS }, () => measureOnce(operation));
  return {
    opsPerSecond: Math.max(...rounds.map((round) => round.opsPerSecond)),
    medianMicroseconds: Math.min(...rounds.map((round) => round.medianMicroseconds)),
    p99Microseconds: Math.min(...rounds.map((round) => round.p99Microseconds)),
    roundMedians: rounds.map((round) => round.medianMicroseconds),
  };
}

const format = (value: number, digits = 1) => value.toFixed(digits).padStart(10);

function main(): void {
  const kekOld = importKek(randomBytes(32), 1);
  const kekNew = importKek(randomBytes(32), 2);
  const keyring = Keyring.create([kekOld, kekNew], kekNew.kekId);
  const oldKeyring = Keyring.single(kekOld);
  const context: BindingContext = { groupId: '3f2c8e1a-6b4d-4c1e-9a7f-2d5b8c0e4f61', secretVersion: 1 };
  const secret = randomBytes(64);

  // Same bytes either way: each implementation opens what the other sealed.
  const nobleEnvelope = sealSecret(secret, context, keyring).envelope;
  const nodeEnvelope = nodeSeal(secret, context, keyring);
  if (
    !Buffer.from(nodeOpen(nobleEnvelope, context, keyring)).equals(secret) ||
    !Buffer.from(openSecret(nodeEnvelope, context, keyring)).equals(secret)
  ) {
    throw new Error(
      'the node:crypto variant does not interoperate with the module: the comparison would be meaningless',
    );
  }
  const oldEnvelope = sealSecret(secret, context, oldKeyring).envelope;

  const rows: [string, ReturnType<typeof measure>, ReturnType<typeof measure>][] = [
    [
      'seal',
      measure(() => sealSecret(secret, context, keyring).envelope),
      measure(() => nodeSeal(secret, context, keyring)),
    ],
    [
      'open',
      measure(() => openSecret(nobleEnvelope, context, keyring).fill(0)),
      measure(() => nodeOpen(nobleEnvelope, context, keyring).fill(0)),
    ],
    [
      'rewrap',
      measure(() => rewrapEnvelope(oldEnvelope, context, keyring).envelope),
      measure(() => nodeRewrap(oldEnvelope, context, keyring)),
    ],
  ];

  console.log(
    `provsec crypto benchmark: 64-byte secret, group id of ${context.groupId.length} chars, Node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} cores)`,
  );
  console.log(
    `best of ${ROUNDS} rounds of ${SAMPLES} operations each; load average at start ${loadavg()[0]!.toFixed(2)}`,
  );
  console.log('');
  console.log('operation   impl            ops/s   median µs      p99 µs   median per round µs');
  const perRound = (figures: ReturnType<typeof measure>) =>
    figures.roundMedians.map((median) => median.toFixed(2)).join(' / ');
  for (const [name, noble, node] of rows) {
    console.log(
      `${name.padEnd(11)} noble  ${format(noble.opsPerSecond, 0)}  ${format(noble.medianMicroseconds, 2)}  ${format(noble.p99Microseconds, 2)}   ${perRound(noble)}`,
    );
    console.log(
      `${''.padEnd(11)} node   ${format(node.opsPerSecond, 0)}  ${format(node.medianMicroseconds, 2)}  ${format(node.p99Microseconds, 2)}   ${perRound(node)}`,
    );
    console.log(
      `${''.padEnd(11)} ratio  node/noble ops/s = ${(node.opsPerSecond / noble.opsPerSecond).toFixed(2)}x, noble/node median = ${(noble.medianMicroseconds / node.medianMicroseconds).toFixed(2)}x`,
    );
  }

  // Where an open spends its time (noble): two AES-GCM calls versus everything else.
  const boundContext = encodeBindingContext(context);
  const parsed = parseEnvelope(nobleEnvelope);
  const wrapAad = encodeDataKeyWrapAad(1, boundContext, parsed.kekIdBytes);
  const secretAad = encodeSecretAad(1, boundContext);
  const dataKey = aes256GcmDecrypt(keyring.current.key, parsed.wrapNonce, parsed.wrappedDataKey, wrapAad);
  const unwrapStep = measure(() =>
    aes256GcmDecrypt(keyring.current.key, parsed.wrapNonce, parsed.wrappedDataKey, wrapAad),
  );
  const decryptStep = measure(() => aes256GcmDecrypt(dataKey, parsed.dataNonce, parsed.secretCiphertext, secretAad));
  const framingStep = measure(() => {
    const bound = encodeBindingContext(context);
    const fields = parseEnvelope(nobleEnvelope);
    keyring.decryptionKey(kekIdFromBytes(fields.kekIdBytes));
    encodeDataKeyWrapAad(1, bound, fields.kekIdBytes);
    return encodeSecretAad(1, bound);
  });
  console.log('');
  console.log(
    `open breakdown (noble, median µs): unwrap data key ${unwrapStep.medianMicroseconds.toFixed(2)}, decrypt secret ${decryptStep.medianMicroseconds.toFixed(2)}, parse + AAD + key lookup ${framingStep.medianMicroseconds.toFixed(2)}`,
  );

  const open = rows[1]![1];
  const rewrap = rows[2]![1];
  console.log('');
  console.log(
    `target: open median < ${OPEN_TARGET_MEDIAN_MICROSECONDS} µs -> ${open.medianMicroseconds.toFixed(2)} µs: ${open.medianMicroseconds < OPEN_TARGET_MEDIAN_MICROSECONDS ? 'MET' : 'MISSED'} (two AES-GCM calls dominate; each noble call rebuilds the AES key schedule and the GHASH table, ~7 µs of table per call)`,
  );
  const budgetMicroseconds = 1e6 / REWRAP_TARGET_ROWS_PER_SECOND;
  console.log(
    `rewrap: ${rewrap.opsPerSecond.toFixed(0)} rows/s on one core for the crypto alone = ${(1e6 / rewrap.opsPerSecond).toFixed(1)} µs of the ${budgetMicroseconds.toFixed(0)} µs per row that ${REWRAP_TARGET_ROWS_PER_SECOND} rows/s allows (the rest is Postgres)`,
  );
}

main();
