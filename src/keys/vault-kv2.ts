/**
 * Vault KV version 2 reads: the secret's metadata (which versions exist, which is current, which
 * are deleted or destroyed) and one version's data. Shapes follow Vault's HTTP API docs
 * (secrets/kv/kv-v2: "Read secret version", "Read secret metadata").
 * Invariant: a key read from Vault is imported (validated, fingerprinted) before it leaves this
 * module, and no response body is kept or quoted.
 */
import { z } from 'zod';
import { InvalidKekError } from '../crypto/errors';
import { importKekFromHex, type KeyEncryptionKey } from '../crypto/kek';
import { KeySourceLoadError } from './errors';
import { describeIssues } from './safe-text';
import type { VaultHttp } from './vault-http';

export interface KvSecretLocation {
  readonly mount: string;
  readonly path: string;
  /** The field of the secret's data that holds the 64 hex digits. */
  readonly field: string;
}

export interface KvVersionState {
  readonly deleted: boolean;
  readonly destroyed: boolean;
  /** The version's `created_time`: what delayed KEK activation counts from (docs/rotation.md). */
  readonly createdAt: Date | undefined;
}

export interface KvMetadata {
  /** 0 when the secret has no versions. */
  readonly currentVersion: number;
  readonly versions: ReadonlyMap<number, KvVersionState>;
}

export type KvKekRead =
  | { readonly outcome: 'live'; readonly kek: KeyEncryptionKey }
  | { readonly outcome: 'gone'; readonly version: number; readonly state: KvVersionState };

const SCHEMA_FIELDS = [
  'data',
  'metadata',
  'current_version',
  'versions',
  'version',
  'deletion_time',
  'destroyed',
  'created_time',
];

// Vault writes "" for deletion_time until a version is deleted; with delete_version_after set, it
// holds a FUTURE time: the version is deleted only once that time has passed.
// created_time is an RFC 3339 time with nanoseconds; a missing or unparsable one means "no
// activation delay" for that version, as in the key file.
const versionState = z.object({
  deletion_time: z.string(),
  destroyed: z.boolean(),
  created_time: z.string().optional(),
});
const metadataAnswer = z.object({
  data: z.object({
    current_version: z.number().int().nonnegative(),
    versions: z.record(z.string().regex(/^[0-9]{1,15}$/), versionState),
  }),
});
const versionAnswer = z.object({
  data: z.object({
    data: z.record(z.string(), z.unknown()).nullable(),
    metadata: versionState.extend({ version: z.number().int().positive() }),
  }),
});

export async function readKvMetadata(
  http: VaultHttp,
  location: KvSecretLocation,
  nowMs = Date.now(),
): Promise<KvMetadata> {
  const answer = await http.read(`${pathOf(location.mount)}/metadata/${pathOf(location.path)}`);
  if (answer.status === 404)
    throw new KeySourceLoadError('not_found', `Vault has no KV v2 secret at ${location.mount}/${location.path}`);
  const parsed = metadataAnswer.safeParse(answer.body);
  if (!parsed.success)
    throw new KeySourceLoadError(
      'bad_response',
      `Vault's metadata for ${location.mount}/${location.path} is not KV v2 metadata: ${describeIssues(parsed.error.issues, SCHEMA_FIELDS)}`,
    );
  const versions = new Map<number, KvVersionState>();
  for (const [version, state] of Object.entries(parsed.data.data.versions))
    versions.set(Number(version), toState(state, nowMs));
  return { currentVersion: parsed.data.data.current_version, versions };
}

/** Reads one version by number (never "latest": a write between metadata and read must not confuse versions). */
export async function readKvKek(
  http: VaultHttp,
  location: KvSecretLocation,
  version: number,
  nowMs = Date.now(),
): Promise<KvKekRead> {
  const where = `${location.mount}/${location.path} version ${version}`;
  const answer = await http.read(`${pathOf(location.mount)}/data/${pathOf(location.path)}?version=${version}`);
  const parsed = versionAnswer.safeParse(answer.body);
  if (answer.status === 404) {
    // Vault answers a deleted or destroyed version with 404 and the version's metadata.
    if (parsed.success && parsed.data.data.metadata.version === version)
      return { outcome: 'gone', version, state: toState(parsed.data.data.metadata, nowMs) };
    throw new KeySourceLoadError('not_found', `Vault has no ${where}`);
  }
  if (!parsed.success)
    throw new KeySourceLoadError(
      'bad_response',
      `Vault's answer for ${where} is not a KV v2 read: ${describeIssues(parsed.error.issues, SCHEMA_FIELDS)}`,
    );
  const { data, metadata } = parsed.data.data;
  if (metadata.version !== version)
    throw new KeySourceLoadError('bad_response', `Vault answered version ${metadata.version} when asked for ${where}`);
  const state = toState(metadata, nowMs);
  if (data === null || state.deleted || state.destroyed) return { outcome: 'gone', version, state };
  const hex = data[location.field];
  if (typeof hex !== 'string')
    throw new KeySourceLoadError(
      'invalid_format',
      `${where} has no string field "${location.field}" (it has ${Object.keys(data).length} fields)`,
    );
  try {
    return { outcome: 'live', kek: importKekFromHex(hex, version) };
  } catch (error) {
    if (error instanceof InvalidKekError)
      throw new KeySourceLoadError('invalid_key', `${where} field "${location.field}": ${error.message}`);
    throw error;
  }
}

function toState(
  state: { deletion_time: string; destroyed: boolean; created_time?: string | undefined },
  nowMs: number,
): KvVersionState {
  const deletionTimeMs = state.deletion_time === '' ? Number.NaN : Date.parse(state.deletion_time);
  const createdTimeMs = state.created_time === undefined ? Number.NaN : Date.parse(state.created_time);
  return {
    deleted: !Number.isNaN(deletionTimeMs) && deletionTimeMs <= nowMs,
    destroyed: state.destroyed,
    createdAt: Number.isNaN(createdTimeMs) ? undefined : new Date(createdTimeMs),
  };
}

/** Mounts and paths may be nested (a/b/c); each segment is escaped, the slashes are kept. */
function pathOf(mountOrPath: string): string {
  return mountOrPath
    .split('/')
    .filter((segment) => segment !== '')
    .map(encodeURIComponent)
    .join('/');
}
