/**
 * The device-group use cases: create, read, rotate and delete provision secrets, each audited.
 * It is the only caller of the crypto module: plaintext exists here between a request body and
 * sealSecret, or between openSecret and the response, and nowhere else.
 *
 * Plaintext handling: the request and response bodies are JS strings, which cannot be wiped; the
 * Buffers made from them here are zeroed as soon as they are sealed, compared or encoded. An opened
 * secret is decoded straight from the buffer crypto returned (then zeroed), never through a copy in
 * Node's shared Buffer pool, which nothing zeroes.
 *
 * Every envelope is opened for the group id the caller asked for, never the id the row came back
 * with: a column collation that folds case must not serve one group's secret under another's name.
 */
import {
  CryptoError,
  encryptForRecipient,
  openSecret,
  sealSecret,
  type Keyring,
  type SecretRecipient,
} from '../crypto';
import type { KeySource } from '../keys/key-source';
import type { AuditEventInput, AuditLog } from '../audit/audit-log';
import type { Actor } from '../audit/audit-sql';
import type {
  DeviceGroupMetadata,
  DeviceGroupStore,
  SealedSecretRow,
  StoredDeviceGroup,
} from '../store/device-group-store';
import { STALE_ENVELOPE_REASON } from '../store/secret-history-sql';
import {
  DeviceGroupConflictError,
  DeviceGroupNotFoundError,
  KeyringNotLoadedError,
  StoredSecretUnreadableError,
} from './errors';
import { secretsEqual } from './secret-comparison';
import type { ProvisionSecretAnswer } from '../protocol/secret-answer';

export type { Actor };

const utf8 = new TextDecoder('utf-8');

export interface DeviceGroupServiceDeps {
  readonly store: DeviceGroupStore;
  readonly audit: Pick<AuditLog, 'record'>;
  readonly keys: Pick<KeySource, 'currentKeyring' | 'keyringFor'>;
}

export interface CreateResult {
  /** false when this was a retry of an earlier identical creation. */
  readonly created: boolean;
  readonly group: DeviceGroupMetadata;
}

export type ProvisionSecret = ProvisionSecretAnswer;

/** A read's answer: today's JSON, or that JSON sealed as a compact JWE to the worker's registered key. */
export type SecretAnswer =
  | { readonly kind: 'json'; readonly secret: ProvisionSecret }
  | { readonly kind: 'jwe'; readonly jwe: string; readonly recipientKid: string };

export function createDeviceGroupService(deps: DeviceGroupServiceDeps) {
  const { store, audit, keys } = deps;

  function currentKeyring(): Keyring {
    const keyring = keys.currentKeyring();
    // Never store a secret without a KEK (and never under a made-up one): fail closed with a 503.
    if (!keyring) throw new KeyringNotLoadedError();
    return keyring;
  }

  function event(
    actor: Actor,
    fields: Pick<AuditEventInput, 'action' | 'groupId' | 'outcome'> & Partial<AuditEventInput>,
  ): AuditEventInput {
    return { secretVersion: null, kekId: null, reason: null, ...actor, ...fields };
  }

  /**
   * Opens a stored envelope for `requestedId`; every failure becomes StoredSecretUnreadableError
   * (fail closed).
   */
  async function openStored(row: SealedSecretRow, requestedId: string): Promise<Uint8Array> {
    // A genuine but superseded envelope (rolled back, or a deleted incarnation's) would open: never try it.
    if (!row.envelopeIsCurrent) throw staleEnvelopeError(row.id);
    try {
      const keyring = await keys.keyringFor(row.kekId, row.kekVersion);
      // The AAD binds the id asked for: a row matched under another spelling does not open.
      return openSecret(row.envelope, { groupId: requestedId, secretVersion: row.secretVersion }, keyring);
    } catch (error) {
      if (error instanceof CryptoError) throw new StoredSecretUnreadableError(row.id, error.code, error.message);
      throw error;
    }
  }

  /** Same id again: a retry with the same secret gets the existing group, anything else a 409. */
  async function resolveExisting(
    existing: StoredDeviceGroup,
    requestedId: string,
    secret: Uint8Array,
    actor: Actor,
  ): Promise<CreateResult> {
    let stored: Uint8Array;
    try {
      stored = await openStored(existing, requestedId);
    } catch (error) {
      // The stored secret was opened and failed (tampered, or its KEK is gone): on record, as a failed read is.
      const reason = error instanceof StoredSecretUnreadableError ? error.reason : 'internal_error';
      await audit.record(
        event(actor, {
          action: 'device-group.create',
          groupId: existing.id,
          outcome: 'error',
          reason,
          secretVersion: existing.secretVersion,
          kekId: existing.kekId,
        }),
      );
      throw error;
    }
    try {
      if (!secretsEqual(stored, secret)) {
        await audit.record(
          event(actor, {
            action: 'device-group.create',
            groupId: existing.id,
            outcome: 'denied',
            reason: 'id_conflict',
            secretVersion: existing.secretVersion,
            kekId: existing.kekId,
          }),
        );
        throw new DeviceGroupConflictError(
          `device group ${existing.id} already exists with a different provision secret`,
        );
      }
    } finally {
      stored.fill(0);
    }
    await audit.record(
      event(actor, {
        action: 'device-group.create',
        groupId: existing.id,
        outcome: 'ok',
        reason: 'idempotent_retry',
        secretVersion: existing.secretVersion,
        kekId: existing.kekId,
      }),
    );
    return { created: false, group: existing };
  }

  return {
    async create(
      input: { id: string; name: string | null; provisionSecret: string },
      actor: Actor,
    ): Promise<CreateResult> {
      const secret = Buffer.from(input.provisionSecret, 'utf8');
      try {
        // Insert first: a new id (the common case) costs one statement, the row and its audit
        // record together. Only when the id already holds a secret is the stored one fetched and
        // compared (a retry gets 200, anything else 409); the unused envelope is simply dropped.
        const sealed = sealSecret(secret, { groupId: input.id, secretVersion: 1 }, currentKeyring());
        const group = await store.insert(
          {
            id: input.id,
            name: input.name,
            sealed: { envelope: sealed.envelope, kekId: sealed.kekId, kekVersion: sealed.kekVersion },
          },
          actor,
        );
        if (!group) {
          const existing = await store.find(input.id);
          // Deleted between our insert and this read: the caller may simply retry.
          if (!existing) throw new DeviceGroupConflictError(`device group ${input.id} changed concurrently; retry`);
          return await resolveExisting(existing, input.id, secret, actor);
        }
        return { created: true, group };
      } finally {
        secret.fill(0);
      }
    },

    async get(id: string): Promise<DeviceGroupMetadata> {
      const group = await store.find(id);
      if (!group) throw new DeviceGroupNotFoundError(id);
      return group;
    },

    list(limit: number, afterId: string | undefined): Promise<DeviceGroupMetadata[]> {
      return store.list(limit, afterId);
    },

    /**
     * The only way a secret leaves the service: as JSON, or, when the authorizing rule registered
     * the worker's key (`recipient`), only inside a JWE to that key. The audit record (with how it
     * is delivered) is committed in the same statement that fetches the envelope, before
     * decryption; a failure to open or to encrypt adds an `error` record and releases nothing.
     */
    async readSecret(id: string, actor: Actor, recipient?: SecretRecipient): Promise<SecretAnswer> {
      const row = await store.findForSecretRead(
        id,
        actor,
        recipient === undefined ? { kind: 'json' } : { kind: 'jwe', recipientKid: recipient.kid },
      );
      if (!row) {
        await audit.record(
          event(actor, { action: 'provision-secret.read', groupId: id, outcome: 'error', reason: 'not_found' }),
        );
        throw new DeviceGroupNotFoundError(id);
      }
      // The read's own statement already recorded this refusal (reason stale_envelope).
      if (!row.envelopeIsCurrent) throw staleEnvelopeError(row.id);
      const failed = async (reason: string): Promise<void> =>
        audit.record(
          event(actor, {
            action: 'provision-secret.read',
            groupId: id,
            outcome: 'error',
            reason,
            secretVersion: row.secretVersion,
            kekId: row.kekId,
          }),
        );
      let plaintext: Uint8Array;
      try {
        plaintext = await openStored(row, id);
      } catch (error) {
        await failed(error instanceof StoredSecretUnreadableError ? error.reason : 'internal_error');
        throw error;
      }
      try {
        const secret: ProvisionSecret = {
          id,
          // Not Buffer.from(plaintext): that copies a short secret into the shared pool, never zeroed.
          provisionSecret: utf8.decode(plaintext),
          secretVersion: row.secretVersion,
        };
        if (recipient === undefined) return { kind: 'json', secret };
        const answerBytes = Buffer.from(JSON.stringify(secret), 'utf8');
        try {
          const jwe = await encryptForRecipient(answerBytes, recipient, {
            groupId: id,
            secretVersion: row.secretVersion,
          });
          return { kind: 'jwe', jwe, recipientKid: recipient.kid };
        } catch (error) {
          await failed(error instanceof CryptoError ? error.code : 'jwe_encryption_failed');
          throw error;
        } finally {
          answerBytes.fill(0);
        }
      } finally {
        plaintext.fill(0);
      }
    },

    /** IoTA reissued the secret: store the new one under secretVersion + 1 with a fresh data key. */
    async rotateSecret(id: string, provisionSecret: string, actor: Actor): Promise<DeviceGroupMetadata> {
      const current = await store.find(id);
      if (!current) {
        await audit.record(
          event(actor, { action: 'provision-secret.rotate', groupId: id, outcome: 'error', reason: 'not_found' }),
        );
        throw new DeviceGroupNotFoundError(id);
      }
      const secret = Buffer.from(provisionSecret, 'utf8');
      let sealed;
      try {
        sealed = sealSecret(secret, { groupId: id, secretVersion: current.secretVersion + 1 }, currentKeyring());
      } finally {
        secret.fill(0);
      }
      const group = await store.replaceSecret(
        id,
        current.secretVersion,
        { envelope: sealed.envelope, kekId: sealed.kekId, kekVersion: sealed.kekVersion },
        actor,
      );
      if (!group) {
        await audit.record(
          event(actor, {
            action: 'provision-secret.rotate',
            groupId: id,
            outcome: 'denied',
            reason: 'concurrent_change',
            secretVersion: current.secretVersion,
          }),
        );
        throw new DeviceGroupConflictError(`device group ${id} was changed or deleted concurrently; retry`);
      }
      return group;
    },

    async delete(id: string, actor: Actor): Promise<void> {
      const deleted = await store.delete(id, actor);
      if (!deleted) {
        await audit.record(
          event(actor, { action: 'device-group.delete', groupId: id, outcome: 'error', reason: 'not_found' }),
        );
        throw new DeviceGroupNotFoundError(id);
      }
    },
  };
}

function staleEnvelopeError(groupId: string): StoredSecretUnreadableError {
  return new StoredSecretUnreadableError(
    groupId,
    STALE_ENVELOPE_REASON,
    'the envelope is stale: it is not the one provsec last stored for this group (rolled back, or replaced outside provsec)',
  );
}

export type DeviceGroupService = ReturnType<typeof createDeviceGroupService>;
