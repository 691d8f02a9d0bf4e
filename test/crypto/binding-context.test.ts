import fc from 'fast-check';
import {
  BINDING_DOMAIN_LABEL,
  BindingLayer,
  MAX_GROUP_ID_CODE_POINTS,
  MAX_SECRET_VERSION,
  encodeBindingContext,
  encodeDataKeyWrapAad,
  encodeSecretAad,
} from '../../src/crypto/binding-context';
import { InvalidBindingContextError } from '../../src/crypto/errors';

const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const asciiHex = (text: string): string => Buffer.from(text, 'utf8').toString('hex');
const kekIdBytes = Uint8Array.from(Buffer.from('00112233445566778899aabbccddeeff', 'hex'));

describe('binding context constants', () => {
  test('the domain and layer labels are pinned (they are inside every stored tag; renaming one breaks every envelope)', () => {
    expect(BINDING_DOMAIN_LABEL).toBe('provsec/envelope-binding');
    expect(BindingLayer).toEqual({ dataKeyWrap: 'data-key-wrap', secret: 'secret' });
    expect(MAX_GROUP_ID_CODE_POINTS).toBe(128);
    expect(MAX_SECRET_VERSION).toBe(4294967295);
  });
});

describe('AAD encoding', () => {
  const context = encodeBindingContext({ groupId: 'group-1', secretVersion: 258 });

  test('secret layer: exact bytes, every field length-prefixed or fixed-width', () => {
    const expected =
      '0018' +
      asciiHex('provsec/envelope-binding') +
      '01' +
      '0006' +
      asciiHex('secret') +
      '0007' +
      asciiHex('group-1') +
      '00000102';
    expect(toHex(encodeSecretAad(1, context))).toBe(expected);
  });

  test('wrap layer: exact bytes, the same context plus the length-prefixed KEK id', () => {
    const expected =
      '0018' +
      asciiHex('provsec/envelope-binding') +
      '01' +
      '000d' +
      asciiHex('data-key-wrap') +
      '0007' +
      asciiHex('group-1') +
      '00000102' +
      '0010' +
      '00112233445566778899aabbccddeeff';
    expect(toHex(encodeDataKeyWrapAad(1, context, kekIdBytes))).toBe(expected);
  });

  test('group ids are UTF-8 and their prefix counts bytes, not characters', () => {
    const aad = encodeSecretAad(1, encodeBindingContext({ groupId: 'gé😀', secretVersion: 1 }));
    expect(toHex(aad)).toContain('0007' + asciiHex('gé😀'));
  });

  const contextArbitrary = fc.record({
    groupId: fc.string({ unit: 'binary', minLength: 1, maxLength: MAX_GROUP_ID_CODE_POINTS }),
    secretVersion: fc.integer({ min: 1, max: MAX_SECRET_VERSION }),
  });

  test('two different contexts never share an AAD, on either layer (numRuns 2000)', () => {
    fc.assert(
      fc.property(contextArbitrary, contextArbitrary, (first, second) => {
        fc.pre(first.groupId !== second.groupId || first.secretVersion !== second.secretVersion);
        const [a, b] = [encodeBindingContext(first), encodeBindingContext(second)];
        expect(toHex(encodeSecretAad(1, a))).not.toBe(toHex(encodeSecretAad(1, b)));
        expect(toHex(encodeDataKeyWrapAad(1, a, kekIdBytes))).not.toBe(toHex(encodeDataKeyWrapAad(1, b, kekIdBytes)));
      }),
      { numRuns: 2000 },
    );
  });

  test('the layer label keeps the two layers apart for one context (numRuns 500)', () => {
    fc.assert(
      fc.property(contextArbitrary, (plain) => {
        const encoded = encodeBindingContext(plain);
        const secretAad = toHex(encodeSecretAad(1, encoded));
        const wrapAad = toHex(encodeDataKeyWrapAad(1, encoded, kekIdBytes));
        // They part at the layer label, right after the domain label and the format version.
        expect(secretAad.slice(0, 54)).toBe(wrapAad.slice(0, 54));
        expect(secretAad.slice(54, 58)).not.toBe(wrapAad.slice(54, 58));
      }),
      { numRuns: 500 },
    );
  });

  test('the format version is bound: version 1 and version 2 AADs differ', () => {
    expect(toHex(encodeSecretAad(1, context))).not.toBe(toHex(encodeSecretAad(2, context)));
  });
});

describe('binding context preconditions', () => {
  const reject = (groupId: unknown, secretVersion: unknown) => () =>
    encodeBindingContext({ groupId, secretVersion } as never);

  test('an empty id would bind the secret to no row at all', () => {
    expect(reject('', 1)).toThrow(InvalidBindingContextError);
    expect(reject(undefined, 1)).toThrow(InvalidBindingContextError);
  });

  test('a lone surrogate is refused: UTF-8 encoding would make two distinct ids share one AAD', () => {
    expect(new TextEncoder().encode('a\uD800')).toEqual(new TextEncoder().encode('a\uDBFF'));
    expect(reject('a\uD800', 1)).toThrow(InvalidBindingContextError);
    expect(reject('\uDC00b', 1)).toThrow(InvalidBindingContextError);
  });

  test('the group id is at most 128 code points, counted as Postgres counts them', () => {
    expect(() => encodeBindingContext({ groupId: 'g'.repeat(128), secretVersion: 1 })).not.toThrow();
    expect(() => encodeBindingContext({ groupId: '😀'.repeat(128), secretVersion: 1 })).not.toThrow(); // 256 UTF-16 units
    expect(reject('g'.repeat(129), 1)).toThrow(InvalidBindingContextError);
    expect(reject('😀'.repeat(129), 1)).toThrow(InvalidBindingContextError);
    expect(reject('x'.repeat(1_000_000), 1)).toThrow('the group id must be at most 128 characters');
  });

  test('the version is written as a u32; anything else would wrap or truncate and alias another version', () => {
    for (const secretVersion of [0, -1, 1.5, 2 ** 32, Number.NaN, Number.POSITIVE_INFINITY, '1']) {
      expect(reject('group', secretVersion)).toThrow(InvalidBindingContextError);
    }
    expect(() => encodeBindingContext({ groupId: 'group', secretVersion: 1 })).not.toThrow();
    expect(() => encodeBindingContext({ groupId: 'group', secretVersion: MAX_SECRET_VERSION })).not.toThrow();
  });
});
