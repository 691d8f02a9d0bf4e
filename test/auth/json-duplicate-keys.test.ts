import fc from 'fast-check';
import { hasDuplicateMemberNames } from '../../src/auth/json-duplicate-keys';

test.each([
  ['{"alg":"RS256","alg":"none"}', true],
  ['{"alg":"RS256","\\u0061lg":"none"}', true],
  ['{ "a" : 1 , "a" : 2 }', true],
  ['{"outer":{"x":1,"x":2}}', true],
  ['[{"x":1},{"x":2}]', false],
  ['{"x":{"x":1},"y":[{"x":2}]}', false],
  ['{"a":"\\"a\\":","b":"a"}', false],
  ['{"a\\\\":1,"a":2}', false],
  ['{"kubernetes.io":{"pod":{"name":"p"},"serviceaccount":{"name":"s"}}}', false],
  ['"just a string"', false],
  ['{}', false],
])('%s -> %s', (json, expected) => {
  expect(() => JSON.parse(json) as unknown).not.toThrow();
  expect(hasDuplicateMemberNames(json)).toBe(expected);
});

test('property: JSON.stringify output never has duplicates; adding a repeated top-level name always does', () => {
  fc.assert(
    fc.property(fc.dictionary(fc.string(), fc.jsonValue(), { minKeys: 1 }), (object) => {
      const text = JSON.stringify(object);
      expect(hasDuplicateMemberNames(text)).toBe(false);
      const [firstName] = Object.keys(object);
      const repeated = `${text.slice(0, -1)},${JSON.stringify(firstName)}:null}`;
      expect(hasDuplicateMemberNames(repeated)).toBe(true);
    }),
  );
});
