/**
 * The key file the Vault Agent renders (KEY_FILE), parsed into a keyring. Pure: no I/O.
 * Two forms, nothing else:
 *   single key (the ADR's):  {"key": "<64 hex digits, either case>"}
 *   keyring:                 {"current": 2, "keys": {"1": "<64 hex>", "2": "<64 hex>"},
 *                             "createdAt": {"2": "<RFC 3339>"}}   (createdAt optional, per version:
 *                             a version younger than KEK_ACTIVATION_DELAY_SECONDS does not seal yet)
 * Invariants: unknown fields are rejected (a typo such as "curent" must not silently drop a key);
 * every failure message is built from field names and lengths, never from the file's content.
 */
import { z } from 'zod';
import { InvalidKekError } from '../crypto/errors';
import { importKekFromHex, type KeyEncryptionKey } from '../crypto/kek';
import { Keyring } from '../crypto/keyring';
import { KeySourceLoadError } from './errors';
import { keyringFromVersions } from './keyring-from-versions';
import { describeIssues } from './safe-text';

/** Far above any real key file; a larger file is not ours (and is not read into memory whole). */
export const MAX_KEY_FILE_BYTES = 64 * 1024;
const FIELD_NAMES = ['key', 'current', 'keys', 'createdAt'];
const VERSION_PATTERN = /^[1-9][0-9]{0,14}$/;

const singleKeyForm = z.strictObject({ key: z.string() });
const keyringForm = z.strictObject({
  current: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  // Versions are positive integers written without leading zeros, as Vault numbers KV versions.
  keys: z.record(z.string().regex(VERSION_PATTERN), z.string()),
  // Vault KV's created_time, as the agent template renders it (RFC 3339, with a zone).
  // null: the agent template found no live version (keys is null too, refused below with its cause).
  createdAt: z
    .record(z.string().regex(VERSION_PATTERN), z.iso.datetime({ offset: true }))
    .nullable()
    .optional(),
});

export function parseKeyFile(text: string): Keyring {
  if (text.trim() === '')
    throw new KeySourceLoadError('invalid_json', 'the key file is empty (truncated, or caught mid-write)');
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    // JSON.parse's own message quotes the input; say only what went wrong.
    throw new KeySourceLoadError('invalid_json', 'the key file is not valid JSON (a partial write, or not a key file)');
  }
  const looksLikeKeyring =
    typeof document === 'object' && document !== null && ('current' in document || 'keys' in document);
  if (!looksLikeKeyring) {
    const single = singleKeyForm.safeParse(document);
    if (!single.success) throw formatError('{"key": "<64 hex>"}', single.error.issues);
    return Keyring.single(importFileKey(single.data.key, null, 'key'));
  }
  refuseEmptyKeyring(document);
  const keyring = keyringForm.safeParse(document);
  if (!keyring.success)
    throw formatError(
      '{"current": <version>, "keys": {"<version>": "<64 hex>"}, "createdAt": {"<version>": "<RFC 3339>"}}',
      keyring.error.issues,
    );
  const keksByVersion = new Map<number, KeyEncryptionKey>();
  for (const [version, hex] of Object.entries(keyring.data.keys)) {
    keksByVersion.set(Number(version), importFileKey(hex, Number(version), `keys.${version}`));
  }
  // The current version must be one of the keys, or the file names a key it does not carry.
  if (!keksByVersion.has(keyring.data.current)) {
    throw new KeySourceLoadError(
      'invalid_keyring',
      `the key file's current version ${keyring.data.current} is not among its keys (${[...keksByVersion.keys()].join(', ') || 'none'})`,
    );
  }
  const createdAtByVersion = new Map<number, Date>();
  for (const [version, time] of Object.entries(keyring.data.createdAt ?? {})) {
    // A time for a version the file does not carry is a template mistake, not something to ignore.
    if (!keksByVersion.has(Number(version)))
      throw new KeySourceLoadError(
        'invalid_keyring',
        `the key file's createdAt names version ${version}, which it has no key for`,
      );
    createdAtByVersion.set(Number(version), new Date(time));
  }
  return keyringFromVersions(keksByVersion, keyring.data.current, createdAtByVersion);
}

/**
 * The agent template lists only versions whose deletion_time is "" and renders `"keys": null` when
 * there is none. delete_version_after (on the mount or the secret) gives every version a deletion
 * time as it is written, so that is the usual way to get here: say so, rather than "invalid type".
 */
function refuseEmptyKeyring(document: unknown): void {
  const { keys, current } = document as { keys?: unknown; current?: unknown };
  const empty = keys === null || (typeof keys === 'object' && keys !== undefined && Object.keys(keys).length === 0);
  if (!empty) return;
  const currentText = typeof current === 'number' && Number.isSafeInteger(current) ? ` (current ${current})` : '';
  throw new KeySourceLoadError(
    'invalid_keyring',
    `the key file holds no key ("keys": ${keys === null ? 'null' : '{}'}): Vault lists no live version of the KEK${currentText}. ` +
      'The likely cause is delete_version_after on the KV mount or on the secret, which marks every version ' +
      'deleted as it is written (check `vault read <mount>/config` and `vault kv metadata get`, set it to 0s, ' +
      'then write a new version); otherwise every version was deleted or destroyed',
  );
}

/** The single-key form, as the dev source writes it. */
export function formatSingleKeyFile(keyHex: string): string {
  return `${JSON.stringify({ key: keyHex })}\n`;
}

function importFileKey(hex: string, kekVersion: number | null, where: string): KeyEncryptionKey {
  try {
    return importKekFromHex(hex, kekVersion);
  } catch (error) {
    // importKekFromHex reports lengths and rules only, never the digits.
    if (error instanceof InvalidKekError)
      throw new KeySourceLoadError('invalid_key', `the key file's ${where}: ${error.message}`);
    throw error;
  }
}

function formatError(expectedForm: string, issues: z.ZodError['issues']): KeySourceLoadError {
  return new KeySourceLoadError(
    'invalid_format',
    `the key file is not of the form ${expectedForm}: ${describeIssues(issues, FIELD_NAMES)}`,
  );
}
