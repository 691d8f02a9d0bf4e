/**
 * A keyring: the KEKs a key source currently knows.
 * Invariants: exactly one KEK is current, and only the current KEK encrypts (wraps data keys);
 * any KEK present and not retired can decrypt; ids are unique. A keyring is immutable: a key
 * source replaces the whole keyring at once, so a request never sees half a rotation.
 *
 * Delayed activation (activeAt): a version younger than the activation delay is known (it opens
 * rows) but not active (it does not seal), so replicas whose key file has not caught up yet can
 * still open everything written meanwhile. The time is always passed in, never read here.
 */
import { InvalidKeyringError, KekUnavailableError } from './errors';
import type { KeyEncryptionKey } from './kek';
import { needs } from './needs';

export interface KeyringEntry extends KeyEncryptionKey {
  /** A retired KEK is still listed (for status) but refuses to decrypt. */
  readonly retired: boolean;
  /** When the source created this version (Vault KV created_time); undefined: active at once. */
  readonly createdAt: Date | undefined;
}

/** A known version that does not seal yet, and when it will. */
export interface PendingActivation {
  readonly kekId: string;
  readonly kekVersion: number | null;
  readonly activatesAt: Date;
}

export class Keyring {
  private readonly byId: ReadonlyMap<string, KeyringEntry>;

  private constructor(
    readonly current: KeyEncryptionKey,
    entries: readonly KeyringEntry[],
  ) {
    this.byId = new Map(entries.map((entry) => [entry.kekId, entry]));
  }

  /**
   * @param keys every KEK the source holds
   * @param currentKekId the one that encrypts; it must be among `keys` and not retired
   * @param retiredKekIds KEKs that stay listed but may no longer decrypt
   * @param createdAtByKekId when each KEK's version was created, where the source knows it
   */
  static create(
    keys: readonly KeyEncryptionKey[],
    currentKekId: string,
    retiredKekIds: readonly string[] = [],
    createdAtByKekId: ReadonlyMap<string, Date> = new Map(),
  ): Keyring {
    const ids = new Set(keys.map((key) => key.kekId));
    // Two entries with one id would make "which key opened this row" ambiguous.
    needs(ids.size === keys.length, () => new InvalidKeyringError('a keyring must not hold the same KEK twice'));
    const current = keys.find((key) => key.kekId === currentKekId);
    // Exactly one current KEK: without it nothing new could be sealed.
    needs(current !== undefined, () => new InvalidKeyringError('the current KEK must be one of the keyring keys'));
    needs(!retiredKekIds.includes(currentKekId), () => new InvalidKeyringError('the current KEK cannot be retired'));
    const entries = keys.map((key) =>
      Object.freeze({
        ...key,
        retired: retiredKekIds.includes(key.kekId),
        createdAt: createdAtByKekId.get(key.kekId),
      }),
    );
    return new Keyring(current, entries);
  }

  /**
   * This keyring as sealing sees it at `nowMs`: the current KEK is the newest version (by version
   * number, up to the source's current) that is active, i.e. has no createdAt or one at least
   * `activationDelayMs` old; when none is active yet, the oldest. Every KEK still decrypts.
   * Returns this keyring itself when its current KEK is already active.
   */
  activeAt(nowMs: number, activationDelayMs: number): Keyring {
    const active = this.activeEntry(nowMs, activationDelayMs);
    if (active.kekId === this.current.kekId) return this;
    const entries = [...this.byId.values()];
    return new Keyring(entries.find((entry) => entry.kekId === active.kekId) ?? active, entries);
  }

  /** The source's current KEK while it is not active yet at `nowMs`, with its activation time. */
  pendingAt(nowMs: number, activationDelayMs: number): PendingActivation | undefined {
    const current = this.byId.get(this.current.kekId);
    if (!current?.createdAt || this.activeEntry(nowMs, activationDelayMs).kekId === current.kekId) return undefined;
    return {
      kekId: current.kekId,
      kekVersion: current.kekVersion,
      activatesAt: new Date(current.createdAt.getTime() + activationDelayMs),
    };
  }

  private activeEntry(nowMs: number, activationDelayMs: number): KeyringEntry {
    const newest = this.current.kekVersion;
    const candidates = [...this.byId.values()]
      .filter((entry) => !entry.retired)
      .filter((entry) => entry.kekId === this.current.kekId || (newest !== null && (entry.kekVersion ?? 0) <= newest))
      .sort((a, b) => (b.kekVersion ?? 0) - (a.kekVersion ?? 0));
    const isActive = (entry: KeyringEntry) =>
      entry.createdAt === undefined || entry.createdAt.getTime() + activationDelayMs <= nowMs;
    // Nothing active yet (a first deployment with a fresh key): the oldest is the best there is.
    return candidates.find(isActive) ?? (candidates[candidates.length - 1] as KeyringEntry);
  }

  /** A keyring of one KEK, current (the ADR's single-key form). */
  static single(key: KeyEncryptionKey): Keyring {
    return Keyring.create([key], key.kekId);
  }

  /** The KEK that may decrypt under this id; throws when it is absent or retired (fail closed). */
  decryptionKey(kekId: string): KeyEncryptionKey {
    const entry = this.byId.get(kekId);
    needs(entry !== undefined, () => new KekUnavailableError(`KEK ${kekId} is not in the keyring`, kekId));
    needs(!entry.retired, () => new KekUnavailableError(`KEK ${kekId} is retired`, kekId));
    return entry;
  }

  has(kekId: string): boolean {
    const entry = this.byId.get(kekId);
    return entry !== undefined && !entry.retired;
  }

  /** Every entry, for status pages: ids, version labels and flags only are meant to leave. */
  entries(): readonly KeyringEntry[] {
    return [...this.byId.values()];
  }

  /** Same keys, same current, same retirement: a reload that changed nothing. */
  sameAs(other: Keyring): boolean {
    if (other.current.kekId !== this.current.kekId || other.byId.size !== this.byId.size) return false;
    for (const [kekId, entry] of this.byId) {
      const theirs = other.byId.get(kekId);
      if (
        !theirs ||
        theirs.retired !== entry.retired ||
        theirs.kekVersion !== entry.kekVersion ||
        theirs.createdAt?.getTime() !== entry.createdAt?.getTime()
      )
        return false;
    }
    return true;
  }
}
