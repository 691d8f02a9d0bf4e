import fc from 'fast-check';
import { PolicyError } from '../../src/auth/errors';
import { compileGroupGlob } from '../../src/auth/group-glob';

test.each([
  ['*', 'any-group', true],
  ['fleet-*', 'fleet-eu.1', true],
  ['fleet-*', 'fleet-', true],
  ['fleet-*', 'Fleet-eu', false],
  ['fleet-*', 'xfleet-eu', false],
  ['*-prod', 'eu:west-prod', true],
  ['*-prod', 'eu:west-prod-2', false],
  ['site-?', 'site-a', true],
  ['site-?', 'site-ab', false],
  ['site-?', 'site-', false],
  ['a*b*c', 'aXXbYYc', true],
  ['a*b*c', 'aXXcYYb', false],
  ['exact.id', 'exact.id', true],
  // '.' is a literal, not "any character": a regex translation would get this wrong.
  ['exact.id', 'exactXid', false],
])('%s matches %s: %s', (glob, groupId, expected) => {
  expect(compileGroupGlob(glob)(groupId)).toBe(expected);
});

test('an id outside the group-id syntax never matches, even "*"', () => {
  for (const groupId of ['', 'has space', 'x'.repeat(129), 'slash/inside', 'new\nline']) {
    expect(compileGroupGlob('*')(groupId)).toBe(false);
    expect(compileGroupGlob('*e*')(groupId)).toBe(false);
  }
});

test.each(['', 'fleet/*', 'fleet-[0-9]', '(a|b)', 'a+', '^a$', 'x'.repeat(129), 'fleet\\*'])(
  'pattern %j is refused (no regex syntax can get in)',
  (glob) => {
    expect(() => compileGroupGlob(glob)).toThrow(PolicyError);
  },
);

test('a pathological pattern matches in linear-ish time (no catastrophic backtracking)', () => {
  const matcher = compileGroupGlob(`${'*a'.repeat(40)}*b`);
  const started = process.hrtime.bigint();
  for (let round = 0; round < 100; round++) expect(matcher('a'.repeat(128))).toBe(false);
  expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(500);
});

test('property: agrees with a reference regex translation on group ids', () => {
  const idChar = fc.constantFrom(...'ab.:-_'.split(''));
  const globChar = fc.constantFrom(...'ab.:-_*?'.split(''));
  fc.assert(
    fc.property(
      fc.string({ unit: globChar, minLength: 1, maxLength: 8 }),
      fc.string({ unit: idChar, minLength: 1, maxLength: 10 }),
      (glob, groupId) => {
        const reference = new RegExp(`^${glob.replace(/[.]/g, '\\.').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
        expect(compileGroupGlob(glob)(groupId)).toBe(reference.test(groupId));
      },
    ),
    { numRuns: 2000 },
  );
});
