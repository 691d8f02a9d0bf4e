import { MAX_BEARER_TOKEN_LENGTH, parseBearerHeader } from '../../src/auth/bearer-header';
import { AuthenticationError } from '../../src/auth/errors';
import { thrownBy } from '../support/thrown';

const reasonOf = (value: string | undefined) => {
  const refused = thrownBy(AuthenticationError, () => parseBearerHeader(value));
  return refused === undefined ? 'accepted' : refused.reason;
};

test('"Bearer <token>" yields the token; the scheme is case-insensitive', () => {
  expect(parseBearerHeader('Bearer abc.def.ghi')).toBe('abc.def.ghi');
  expect(parseBearerHeader('bearer abc.def.ghi')).toBe('abc.def.ghi');
  expect(parseBearerHeader('BEARER abc.def-_~+/=')).toBe('abc.def-_~+/=');
});

test.each([
  [undefined, 'missing_token'],
  ['', 'missing_token'],
  ['   ', 'missing_token'],
  ['Bearer ', 'missing_token'],
  ['Bearer', 'malformed'],
])('%j is refused as %s', (value, reason) => {
  expect(reasonOf(value)).toBe(reason);
});

test.each([
  ['another scheme', 'Basic dXNlcjpwYXNz'],
  ['no scheme', 'abc.def.ghi'],
  ['two spaces', 'Bearer  abc.def.ghi'],
  ['a tab', 'Bearer\tabc.def.ghi'],
  ['two tokens', 'Bearer abc.def.ghi, Bearer jkl.mno.pqr'],
  ['a trailing space', 'Bearer abc.def.ghi '],
  ['characters outside b64token', 'Bearer abc.def.ghi;drop'],
  ['a quoted token', 'Bearer "abc.def.ghi"'],
])('%s is malformed', (_name, value) => {
  expect(reasonOf(value)).toBe('malformed');
});

test('a header longer than the maximum token is malformed, without scanning it', () => {
  expect(reasonOf(`Bearer ${'a'.repeat(MAX_BEARER_TOKEN_LENGTH + 1)}`)).toBe('malformed');
  expect(reasonOf(`Bearer ${'a'.repeat(MAX_BEARER_TOKEN_LENGTH)}`)).toBe('accepted');
});
