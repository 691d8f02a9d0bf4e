/**
 * Builds a keyring from numbered key versions (Vault KV versions, keyring-file entries).
 * Invariant: the version named current becomes the keyring's current KEK. The same key under two
 * versions (a KV value written twice) becomes one entry: the KEK id is the key's fingerprint, so
 * both versions open the same rows; the entry keeps the current version's label, else the newest.
 */
import { InvalidKeyringError } from '../crypto/errors';
import type { KeyEncryptionKey } from '../crypto/kek';
import { Keyring } from '../crypto/keyring';
import { needs } from '../crypto/needs';

export function keyringFromVersions(
  keksByVersion: ReadonlyMap<number, KeyEncryptionKey>,
  currentVersion: number,
  createdAtByVersion: ReadonlyMap<number, Date> = new Map(),
): Keyring {
  const current = keksByVersion.get(currentVersion);
  // Without the current version nothing new could be sealed.
  needs(
    current !== undefined,
    () => new InvalidKeyringError(`the current version ${currentVersion} is not among the key versions`),
  );
  const byKekId = new Map<string, KeyEncryptionKey>();
  const newestFirst = [...keksByVersion.entries()].sort(([a], [b]) => b - a);
  for (const [, kek] of [[currentVersion, current] as const, ...newestFirst]) {
    if (!byKekId.has(kek.kekId)) byKekId.set(kek.kekId, kek);
  }
  const createdAtByKekId = new Map<string, Date>();
  for (const kek of byKekId.values()) {
    const createdAt = kek.kekVersion === null ? undefined : createdAtByVersion.get(kek.kekVersion);
    if (createdAt) createdAtByKekId.set(kek.kekId, createdAt);
  }
  return Keyring.create([...byKekId.values()], current.kekId, [], createdAtByKekId);
}
