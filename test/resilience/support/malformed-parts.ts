/**
 * The building blocks of malformed requests (see malformed-requests.ts): path segments that can
 * address no row, Authorization headers that cannot authenticate, bodies the schemas must refuse,
 * odd query values, and the conservative test that keeps every fuzzed write from being accepted.
 */
import fc from 'fast-check';

const GROUP_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const MAX_SECRET_BYTES = 4096;
const BODY_LIMIT_BYTES = 16 * 1024;

const PRINTABLE = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&\'()*+,;=:@/?#[]%" <>\\^`{|}';
export const printableAscii = (maxLength: number) =>
  fc.string({ unit: fc.constantFrom(...PRINTABLE.split('')), maxLength });

/** True when `segment`, once percent-decoded, is a well-formed group id (could address a real row). */
function decodesToValidId(segment: string): boolean {
  try {
    return GROUP_ID.test(decodeURIComponent(segment));
  } catch {
    return false;
  }
}

/**
 * Conservative: true for anything the create or rotate schema MIGHT accept. Bodies the fuzzer sends
 * with a write token are filtered through this, so none of them can store a secret.
 */
export function mightBeAcceptedBody(body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  const fields = body as Record<string, unknown>;
  if (!Object.keys(fields).every((key) => key === 'id' || key === 'name' || key === 'provisionSecret')) return false;
  const secret = fields.provisionSecret;
  if (typeof secret !== 'string' || secret === '' || Buffer.byteLength(secret, 'utf8') > MAX_SECRET_BYTES) return false;
  if (Buffer.from(secret, 'utf8').toString('utf8') !== secret) return false;
  if (fields.id !== undefined && !(typeof fields.id === 'string' && GROUP_ID.test(fields.id))) return false;
  if (
    fields.name !== undefined &&
    fields.name !== null &&
    !(typeof fields.name === 'string' && fields.name.length <= 256)
  )
    return false;
  return true;
}

function mightBeAcceptedText(text: string): boolean {
  try {
    return mightBeAcceptedBody(JSON.parse(text));
  } catch {
    return false;
  }
}

// ---- ids and paths ----

export const freshId = fc.stringMatching(/^fuzz-new-[a-z0-9]{1,12}$/);

/** A path segment that never decodes to a usable group id. */
export const badIdSegment: fc.Arbitrary<string> = fc
  .oneof(
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 24 }).map(encodeURIComponent),
    fc.string({ unit: fc.constantFrom(...'abcXYZ019._:-'.split('')), minLength: 129, maxLength: 300 }),
    fc.constantFrom(
      '%ZZ',
      '%',
      '%%',
      '%E0%A4%A',
      '%C0%AF',
      '%00',
      'a%00b',
      '%2F',
      'a%2Fb',
      '%ff',
      '%F0%9F',
      '%ED%A0%80',
      '%u0041',
      '%0A',
      '%20',
      '%2e%2e%2f',
    ),
    fc
      .uint8Array({ minLength: 1, maxLength: 12 })
      .map((bytes) => [...bytes].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('')),
    fc
      .tuple(fc.stringMatching(/^[a-z0-9]{1,8}$/), fc.constantFrom('%', '%G1', '%E2%82', '%C3'))
      .map(([prefix, broken]) => prefix + broken),
  )
  .filter((segment) => segment !== '' && !decodesToValidId(segment));

// ---- tokens and the Authorization header ----

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Authorization headers that must never authenticate, built around a `valid` token (undefined: no header). */
export const refusedAuthorization = (
  valid: string,
  refusedTokens: readonly string[],
): fc.Arbitrary<string | undefined> => {
  return fc.oneof(
    fc.constant(undefined),
    fc.constantFrom(...refusedTokens).map((token) => `Bearer ${token}`),
    fc.integer({ min: 0, max: valid.length - 1 }).map((length) => `Bearer ${valid.slice(0, length)}`),
    fc
      .tuple(fc.integer({ min: 0, max: valid.length - 1 }), fc.constantFrom(...B64URL.split('')))
      .filter(([index, replacement]) => valid[index] !== replacement)
      .map(([index, replacement]) => `Bearer ${valid.slice(0, index)}${replacement}${valid.slice(index + 1)}`),
    fc
      .tuple(
        fc.string({ unit: fc.constantFrom(...B64URL.split('')), maxLength: 60 }),
        fc.string({ unit: fc.constantFrom(...B64URL.split('')), maxLength: 200 }),
        fc.string({ unit: fc.constantFrom(...B64URL.split('')), maxLength: 90 }),
      )
      .map(([header, payload, signature]) => `Bearer ${header}.${payload}.${signature}`),
    printableAscii(120).map((garbage) => `Bearer ${garbage}`),
    printableAscii(120),
    fc.constantFrom(
      `Basic ${Buffer.from('management-api:secret').toString('base64')}`,
      'Bearer',
      'Bearer ',
      `Bearer  ${valid}`,
      valid,
      `Bearer ${valid} x`,
      `Bearer ${valid},`,
      `Bearer\t${valid}`,
      `Token ${valid}`,
      `Bearer ${valid}=`,
      `Bearer ${valid}.x`,
      `Bearer ${'A'.repeat(9000)}`,
    ),
  );
};

// ---- bodies ----

const badSecretValue = fc.oneof(
  fc.constant(''),
  fc.string({ unit: 'grapheme-ascii', minLength: MAX_SECRET_BYTES + 1, maxLength: MAX_SECRET_BYTES + 64 }),
  fc.constant('é'.repeat(MAX_SECRET_BYTES / 2 + 1)),
  fc.constantFrom('\ud800', 'a\udc00b', 'x\udbff'),
  fc.integer(),
  fc.constant(null),
  fc.boolean(),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
);

const badIdValue = fc.oneof(
  fc.string({ maxLength: 40 }).filter((id) => !GROUP_ID.test(id)),
  fc.string({ unit: fc.constantFrom(...'abc019.-'.split('')), minLength: 129, maxLength: 200 }),
  fc.integer(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 2 }),
);

export const someSecret = fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 40 });

/** JSON values that break the create/rotate schema in one or more ways. */
export const defectiveJsonBody = fc
  .oneof(
    fc.record({ id: badIdValue, provisionSecret: someSecret }),
    fc.record({ id: freshId, provisionSecret: badSecretValue }),
    fc.record({
      id: freshId,
      provisionSecret: someSecret,
      name: fc.oneof(fc.string({ minLength: 257, maxLength: 300 }), fc.integer(), fc.array(fc.string())),
    }),
    fc
      .tuple(
        fc.string({ minLength: 1, maxLength: 12 }).filter((key) => !['id', 'name', 'provisionSecret'].includes(key)),
        fc.jsonValue({ maxDepth: 2 }),
        freshId,
        someSecret,
      )
      .map(([extraKey, extraValue, id, provisionSecret]) => ({ id, provisionSecret, [extraKey]: extraValue })),
    fc.record({ id: freshId }),
    fc.record({ name: fc.string({ maxLength: 20 }) }),
    fc.constantFrom(
      {},
      [],
      null,
      0,
      'x',
      true,
      { provision_secret: 'x', id: 'fuzz-new-a' },
      { ProvisionSecret: 'x', id: 'fuzz-new-b' },
    ),
    fc.jsonValue({ maxDepth: 3 }),
    fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 }),
  )
  .filter((body) => !mightBeAcceptedBody(body))
  .map((body) => JSON.stringify(body) ?? 'undefined');

/** Bytes that are not JSON, or not the JSON they claim to be. */
export const brokenJsonText = fc
  .oneof(
    fc.string({ unit: 'binary', maxLength: 200 }),
    printableAscii(200),
    fc.tuple(freshId, someSecret, fc.nat()).map(([id, secret, cut]) => {
      const text = JSON.stringify({ id, provisionSecret: secret });
      return text.slice(0, cut % text.length);
    }),
    fc.constantFrom(
      '{',
      '}',
      '{"id":',
      '{"id":"a",}',
      "{'id':'a'}",
      '{"id":"a" "provisionSecret":"b"}',
      '[1,2',
      'NaN',
      '{"a":Infinity}',
      '\u0000',
      '\ufeff{}',
      '{"id":"a","provisionSecret":"b"}garbage',
      '{"provisionSecret":"b"}{"provisionSecret":"c"}',
    ),
    fc.integer({ min: 1, max: 4000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
    fc.integer({ min: 1, max: 8000 }).map((depth) => '{"a":'.repeat(depth)),
    fc.constant('x'.repeat(BODY_LIMIT_BYTES + 1)),
    fc.constant(JSON.stringify({ id: 'fuzz-new-big', provisionSecret: 'y'.repeat(BODY_LIMIT_BYTES) })),
  )
  .filter((text) => !mightBeAcceptedText(text));

/** A body the service WOULD accept, for requests whose defect is elsewhere (token, media type...). */
export const acceptableCreateBody = fc
  .tuple(freshId, someSecret)
  .map(([id, provisionSecret]) => JSON.stringify({ id, provisionSecret }));
export const acceptableRotateBody = someSecret.map((provisionSecret) => JSON.stringify({ provisionSecret }));

export const QUERY_KEYS = [
  'limit',
  'after',
  'groupId',
  'actor',
  'since',
  '__proto__',
  'constructor',
  'prototype',
  'limit[]',
  'after[0]',
  'a[b]',
  'toString',
  'hasOwnProperty',
  '',
];
export const queryValue = fc.oneof(
  fc.constantFrom(
    '0',
    '-1',
    '1001',
    '1e3',
    '0x10',
    '00001',
    '1.5',
    '',
    '%ZZ',
    '%00',
    'NaN',
    'Infinity',
    '99999999999999999999',
    '2024-13-45T99:99:99Z',
    '1970-01-01T00:00:00Z',
    encodeURIComponent("'; DROP TABLE ota_groups; --"),
  ),
  fc.string({ maxLength: 30 }).map(encodeURIComponent),
  fc.string({ unit: 'grapheme-ascii', minLength: 600, maxLength: 700 }).map(encodeURIComponent),
);
