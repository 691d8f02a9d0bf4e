/**
 * Key-encryption keys (KEKs): validation and the KEK id.
 * Invariants: a KEK is exactly 32 bytes and never all zero; a KEK's id is derived from the key with
 * HMAC-SHA-256 under a fixed label, so one key has one id whatever source delivered it, and the id
 * reveals nothing that helps recover the key.
 */
import { createHmac } from 'node:crypto';
import { InvalidKekError } from './errors';
import { needs } from './needs';

export const KEK_LENGTH_BYTES = 32;
/** Raw length of a KEK id inside an envelope (128 bits of the HMAC output). */
export const KEK_ID_LENGTH_BYTES = 16;
const KEK_ID_LABEL = 'provsec/kek-id/v1';
const KEK_ID_PREFIX = 'kek_';
/** The written form of a KEK id: the prefix and the hex of its KEK_ID_LENGTH_BYTES bytes. */
export const KEK_ID_PATTERN = new RegExp(`^${KEK_ID_PREFIX}[0-9a-f]{${KEK_ID_LENGTH_BYTES * 2}}$`);

export interface KeyEncryptionKey {
  /** Fingerprint of the key: `kek_` + 32 lower-case hex digits. */
  readonly kekId: string;
  /** The version number the source gave this key (KV v2 version, keyring file entry), if any. */
  readonly kekVersion: number | null;
  /** The 32 key bytes. Held only in memory, never logged or stored. */
  readonly key: Uint8Array;
}

/** Validates raw key bytes and derives the KEK's id. The bytes are copied. */
export function importKek(keyBytes: Uint8Array, kekVersion: number | null = null): KeyEncryptionKey {
  // A short or long key would silently change the cipher's strength (or fail deep inside AES).
  needs(
    keyBytes.length === KEK_LENGTH_BYTES,
    () => new InvalidKekError(`a KEK must be exactly ${KEK_LENGTH_BYTES} bytes, got ${keyBytes.length}`),
  );
  // An all-zero key is the classic sign of an unset or failed render; never encrypt under it.
  needs(
    keyBytes.some((byte) => byte !== 0),
    () => new InvalidKekError('a KEK must not be all zero bytes'),
  );
  const key = Uint8Array.from(keyBytes);
  return Object.freeze({ kekId: deriveKekId(key), kekVersion, key });
}

/** Parses the 64-hex-digit form the ADR's `openssl enc -P` prints (either case). */
export function importKekFromHex(hex: string, kekVersion: number | null = null): KeyEncryptionKey {
  needs(/^[0-9a-fA-F]*$/.test(hex), () => new InvalidKekError('a KEK must be written as hexadecimal digits'));
  needs(
    hex.length === KEK_LENGTH_BYTES * 2,
    () => new InvalidKekError(`a KEK must be ${KEK_LENGTH_BYTES * 2} hex digits, got ${hex.length}`),
  );
  const bytes = Buffer.from(hex, 'hex');
  try {
    return importKek(bytes, kekVersion);
  } finally {
    bytes.fill(0);
  }
}

/** kek_<hex(HMAC-SHA-256(key, label))[0..16)>: keyed by the KEK itself, never a bare hash of it. */
export function deriveKekId(key: Uint8Array): string {
  const mac = createHmac('sha256', key).update(KEK_ID_LABEL).digest();
  return KEK_ID_PREFIX + mac.subarray(0, KEK_ID_LENGTH_BYTES).toString('hex');
}

export function kekIdToBytes(kekId: string): Uint8Array {
  return Buffer.from(kekId.slice(KEK_ID_PREFIX.length), 'hex');
}

export function kekIdFromBytes(bytes: Uint8Array): string {
  return KEK_ID_PREFIX + Buffer.from(bytes).toString('hex');
}

export function isKekId(value: string): boolean {
  return KEK_ID_PATTERN.test(value);
}
