/** The verification cache in front of the real verifier: what it skips, what it never skips, its bounds. */
import { AuthConfigError } from '../../src/auth/errors';
import type { Principal } from '../../src/auth/principal';
import { createTokenVerifier, type TokenVerifier } from '../../src/auth/token-verifier';
import { withVerificationCache } from '../../src/auth/verification-cache';
import { refusalOf } from './support/refusal';
import { keySetOf, makeKey, nowSeconds, signedToken, validClaims, type TestKey } from './support/test-keys';

const ISSUER = 'https://issuer.test';

let key: TestKey;
let realVerifier: TokenVerifier;

beforeAll(() => {
  key = makeKey('ES256', 'ec-1');
  realVerifier = createTokenVerifier({
    issuers: [{ issuer: ISSUER, jwks: { kind: 'inline', keySet: keySetOf(key) } }],
  });
});

/** The real verifier, counting how often the cache had to ask it. */
function countingVerifier(): TokenVerifier & { checks: number } {
  const counting = {
    checks: 0,
    verify(token: string): Promise<Principal> {
      counting.checks += 1;
      return realVerifier.verify(token);
    },
  };
  return counting;
}

function manualClock(startMs = Date.now()) {
  const clock = { nowMs: startMs, advance: (ms: number) => (clock.nowMs += ms), read: () => clock.nowMs };
  return clock;
}

test('a token verified once is not checked again within the TTL, and yields the same principal', async () => {
  const inner = countingVerifier();
  const cached = withVerificationCache(inner);
  const token = signedToken(key, validClaims(ISSUER));
  const first = await cached.verify(token);
  const second = await cached.verify(token);
  expect(second).toBe(first);
  expect(first.subject).toBe('system:serviceaccount:provisioning:cert-worker');
  expect(inner.checks).toBe(1);
});

test('a refusal is never cached: the same bad token is checked, and refused, every time', async () => {
  const inner = countingVerifier();
  const cached = withVerificationCache(inner);
  const expired = signedToken(key, validClaims(ISSUER, { iat: nowSeconds() - 600, exp: nowSeconds() - 120 }));
  expect((await refusalOf(cached.verify(expired))).reason).toBe('expired');
  expect((await refusalOf(cached.verify(expired))).reason).toBe('expired');
  expect(inner.checks).toBe(2);
});

test('a token with a forged signature is refused even when the genuine token is cached', async () => {
  const cached = withVerificationCache(countingVerifier());
  const genuine = signedToken(key, validClaims(ISSUER));
  await cached.verify(genuine);
  const [header, payload] = genuine.split('.');
  const forged = `${header}.${payload}.${Buffer.alloc(64, 1).toString('base64url')}`;
  expect((await refusalOf(cached.verify(forged))).reason).toBe('bad_signature');
});

test('a success is checked again once the TTL has passed', async () => {
  const inner = countingVerifier();
  const clock = manualClock();
  const cached = withVerificationCache(inner, { ttlMs: 30_000, nowMs: clock.read });
  const token = signedToken(key, validClaims(ISSUER));
  await cached.verify(token);
  clock.advance(29_999);
  await cached.verify(token);
  expect(inner.checks).toBe(1);
  clock.advance(1);
  await cached.verify(token);
  expect(inner.checks).toBe(2);
});

test("an entry never outlives the token's exp, even inside the TTL", async () => {
  const inner = countingVerifier();
  const expSeconds = nowSeconds() + 10;
  const clock = manualClock(expSeconds * 1000 - 5_000);
  const cached = withVerificationCache(inner, { ttlMs: 60_000, nowMs: clock.read });
  const token = signedToken(key, validClaims(ISSUER, { exp: expSeconds }));
  await cached.verify(token);
  clock.advance(4_999);
  await cached.verify(token);
  expect(inner.checks).toBe(1);
  clock.advance(1);
  // At exp the token goes back to the real verifier (which has its own clock and tolerance).
  await cached.verify(token).catch(() => undefined);
  expect(inner.checks).toBe(2);
});

test('the cache is bounded: past maxEntries the oldest entry is dropped first', async () => {
  const inner = countingVerifier();
  const cached = withVerificationCache(inner, { maxEntries: 2 });
  const tokens = ['worker-1', 'worker-2', 'worker-3'].map((sub) => signedToken(key, validClaims(ISSUER, { sub })));
  for (const token of tokens) await cached.verify(token);
  expect(inner.checks).toBe(3);
  await cached.verify(tokens[2] as string);
  await cached.verify(tokens[1] as string);
  expect(inner.checks).toBe(3);
  await cached.verify(tokens[0] as string);
  expect(inner.checks).toBe(4);
});

test('distinct tokens of one subject are distinct entries', async () => {
  const inner = countingVerifier();
  const cached = withVerificationCache(inner);
  await cached.verify(signedToken(key, validClaims(ISSUER, { jti: 'a' })));
  await cached.verify(signedToken(key, validClaims(ISSUER, { jti: 'b' })));
  expect(inner.checks).toBe(2);
});

describe('preconditions', () => {
  test('a long TTL would keep tokens of a withdrawn signing key working long after the issuer dropped it', () => {
    expect(() => withVerificationCache(realVerifier, { ttlMs: 300_001 })).toThrow(AuthConfigError);
    expect(() => withVerificationCache(realVerifier, { ttlMs: 0 })).toThrow(AuthConfigError);
    expect(() => withVerificationCache(realVerifier, { ttlMs: 300_000 })).not.toThrow();
  });

  test('the cache size must be a positive whole number', () => {
    expect(() => withVerificationCache(realVerifier, { maxEntries: 0 })).toThrow(AuthConfigError);
    expect(() => withVerificationCache(realVerifier, { maxEntries: 1.5 })).toThrow(AuthConfigError);
  });
});
