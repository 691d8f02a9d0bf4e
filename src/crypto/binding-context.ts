/**
 * The binding context: what an envelope belongs to, encoded as GCM associated data (AAD).
 * Invariants: both layers authenticate the domain label, the envelope format version, the group id
 * and the secret version, so an envelope copied to another row or presented for another secret
 * version fails to open; every variable-length field is length-prefixed, so two different contexts
 * never encode to the same bytes; the layer label keeps the two layers' AADs apart.
 */
import { InvalidBindingContextError } from './errors';
import { needs } from './needs';

export interface BindingContext {
  /** The device group (the `ota_groups` row) the secret belongs to. */
  readonly groupId: string;
  /** The secret's version within its group, 1..2^32-1. */
  readonly secretVersion: number;
}

/** Separates our AADs from any other protocol that might ever use the same keys. */
export const BINDING_DOMAIN_LABEL = 'provsec/envelope-binding';

/** Which encryption an AAD is for. Stored nowhere but fixed forever: changing one breaks every envelope. */
export const BindingLayer = Object.freeze({
  /** The KEK wrapping the data key. */
  dataKeyWrap: 'data-key-wrap',
  /** The data key encrypting the secret. */
  secret: 'secret',
} as const);
export type BindingLayer = (typeof BindingLayer)[keyof typeof BindingLayer];

/** Same bound as the `ota_groups.group_id` column; counted in Unicode code points, as Postgres counts. */
export const MAX_GROUP_ID_CODE_POINTS = 128;
export const MAX_SECRET_VERSION = 0xffff_ffff;

/** A context that passed validation, with its group id already UTF-8 encoded (reused by both layers). */
export interface EncodedBindingContext {
  readonly groupIdUtf8: Uint8Array;
  readonly secretVersion: number;
}

const utf8 = new TextEncoder();
const DOMAIN_LABEL_BYTES = utf8.encode(BINDING_DOMAIN_LABEL);
const DATA_KEY_WRAP_LABEL_BYTES = utf8.encode(BindingLayer.dataKeyWrap);
const SECRET_LABEL_BYTES = utf8.encode(BindingLayer.secret);
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** Validates the context and encodes its group id once. */
export function encodeBindingContext(context: BindingContext): EncodedBindingContext {
  const { groupId, secretVersion } = context;
  // An empty id would bind the secret to no row at all.
  needs(
    typeof groupId === 'string' && groupId.length > 0,
    () => new InvalidBindingContextError('the group id must be a non-empty string'),
  );
  // UTF-8 encoding turns every lone surrogate into U+FFFD, so two distinct ids would share one AAD.
  needs(
    !LONE_SURROGATE.test(groupId),
    () => new InvalidBindingContextError('the group id must be well-formed Unicode'),
  );
  needs(
    hasAtMostCodePoints(groupId, MAX_GROUP_ID_CODE_POINTS),
    () => new InvalidBindingContextError(`the group id must be at most ${MAX_GROUP_ID_CODE_POINTS} characters`),
  );
  // The version is written as a u32; anything else would wrap or truncate and alias another version.
  needs(
    Number.isInteger(secretVersion) && secretVersion >= 1 && secretVersion <= MAX_SECRET_VERSION,
    () => new InvalidBindingContextError(`the secret version must be an integer from 1 to ${MAX_SECRET_VERSION}`),
  );
  return { groupIdUtf8: utf8.encode(groupId), secretVersion };
}

/** AAD of the secret layer (data key encrypts secret). It leaves the KEK out so a rewrap can keep the ciphertext. */
export function encodeSecretAad(formatVersion: number, context: EncodedBindingContext): Uint8Array {
  return encodeAad(formatVersion, SECRET_LABEL_BYTES, context, null);
}

/** AAD of the wrap layer (KEK wraps data key): the context plus the KEK id the header names. */
export function encodeDataKeyWrapAad(
  formatVersion: number,
  context: EncodedBindingContext,
  kekIdBytes: Uint8Array,
): Uint8Array {
  return encodeAad(formatVersion, DATA_KEY_WRAP_LABEL_BYTES, context, kekIdBytes);
}

/**
 * u16 len | domain label | u8 format version | u16 len | layer label | u16 len | group id (UTF-8)
 * | u32 secret version | [wrap layer only: u16 len | KEK id]. All integers big-endian.
 */
function encodeAad(
  formatVersion: number,
  layerLabel: Uint8Array,
  context: EncodedBindingContext,
  kekIdBytes: Uint8Array | null,
): Uint8Array {
  const { groupIdUtf8, secretVersion } = context;
  const length =
    2 +
    DOMAIN_LABEL_BYTES.length +
    1 +
    2 +
    layerLabel.length +
    2 +
    groupIdUtf8.length +
    4 +
    (kekIdBytes ? 2 + kekIdBytes.length : 0);
  const aad = new Uint8Array(length);
  let offset = writeLengthPrefixed(aad, 0, DOMAIN_LABEL_BYTES);
  aad[offset++] = formatVersion & 0xff;
  offset = writeLengthPrefixed(aad, offset, layerLabel);
  offset = writeLengthPrefixed(aad, offset, groupIdUtf8);
  aad[offset++] = (secretVersion >>> 24) & 0xff;
  aad[offset++] = (secretVersion >>> 16) & 0xff;
  aad[offset++] = (secretVersion >>> 8) & 0xff;
  aad[offset++] = secretVersion & 0xff;
  if (kekIdBytes) writeLengthPrefixed(aad, offset, kekIdBytes);
  return aad;
}

function writeLengthPrefixed(target: Uint8Array, offset: number, field: Uint8Array): number {
  // Every field here is far below 64 KiB (group ids are at most 512 UTF-8 bytes).
  target[offset] = (field.length >>> 8) & 0xff;
  target[offset + 1] = field.length & 0xff;
  target.set(field, offset + 2);
  return offset + 2 + field.length;
}

/** Counts code points only as far as needed, so a huge string costs no more than a short one. */
function hasAtMostCodePoints(text: string, maxCodePoints: number): boolean {
  if (text.length <= maxCodePoints) return true; // a code point is one or two UTF-16 units
  let count = 0;
  for (let index = 0; index < text.length; index += text.codePointAt(index)! > 0xffff ? 2 : 1) {
    if (++count > maxCodePoints) return false;
  }
  return true;
}
