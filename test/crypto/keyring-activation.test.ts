/**
 * Delayed activation (src/crypto/keyring.ts activeAt/pendingAt): a version younger than the delay
 * is known but does not seal; the time is injected, so every case is exact.
 */
import { randomBytes } from 'node:crypto';
import { importKek, Keyring } from '../../src/crypto';

const DELAY_MS = 120_000;
const T0 = Date.parse('2026-12-01T12:00:00Z');
const kek = (version: number) => importKek(randomBytes(32), version);

function keyringOf(createdAt: Record<number, number | undefined>, current: number): Keyring {
  const keks = Object.keys(createdAt).map((version) => kek(Number(version)));
  const byVersion = new Map(keks.map((key) => [key.kekVersion, key]));
  const times = new Map<string, Date>();
  for (const [version, at] of Object.entries(createdAt))
    if (at !== undefined) times.set(byVersion.get(Number(version))!.kekId, new Date(at));
  return Keyring.create(keks, byVersion.get(current)!.kekId, [], times);
}

test('a version younger than the delay is known (it decrypts) but the previous version still seals', () => {
  const keyring = keyringOf({ 1: undefined, 2: T0 }, 2);
  const sealing = keyring.activeAt(T0 + DELAY_MS - 1, DELAY_MS);
  expect(sealing.current.kekVersion).toBe(1);
  expect(sealing.has(keyring.current.kekId)).toBe(true);
  expect(keyring.pendingAt(T0 + DELAY_MS - 1, DELAY_MS)).toEqual({
    kekId: keyring.current.kekId,
    kekVersion: 2,
    activatesAt: new Date(T0 + DELAY_MS),
  });
});

test('once the delay has passed the newest version seals, and nothing is pending', () => {
  const keyring = keyringOf({ 1: T0 - 10 * DELAY_MS, 2: T0 }, 2);
  expect(keyring.activeAt(T0 + DELAY_MS, DELAY_MS)).toBe(keyring);
  expect(keyring.pendingAt(T0 + DELAY_MS, DELAY_MS)).toBeUndefined();
});

test('a version without createdAt is active at once', () => {
  const keyring = keyringOf({ 1: T0 - 10 * DELAY_MS, 2: undefined }, 2);
  expect(keyring.activeAt(T0, DELAY_MS).current.kekVersion).toBe(2);
});

test('when no version is active yet, the oldest one seals', () => {
  const keyring = keyringOf({ 3: T0, 4: T0 + 1000, 5: T0 + 2000 }, 5);
  expect(keyring.activeAt(T0 + 2000, DELAY_MS).current.kekVersion).toBe(3);
});

test('the newest active version seals, not merely an older active one', () => {
  const keyring = keyringOf({ 1: T0 - 10 * DELAY_MS, 2: T0 - 2 * DELAY_MS, 3: T0 }, 3);
  expect(keyring.activeAt(T0 + 1, DELAY_MS).current.kekVersion).toBe(2);
});
