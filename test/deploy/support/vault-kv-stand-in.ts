/**
 * A stand-in for one Vault KV v2 secret as the agent's template engine sees it: the `data` member
 * of Vault's documented responses for GET <mount>/metadata/<path> and
 * GET <mount>/data/<path>?version=N, numbers as json.Number, plus consul-template's behaviour on
 * top: a read of a deleted version is an error ("no secret exists"), not an empty secret.
 * Versions beyond max_versions are purged from the metadata, as Vault does.
 */
import { JsonNumber } from './consul-template-subset';

interface StoredVersion {
  readonly data: Record<string, string>;
  readonly createdTime: string;
  deletionTime: string;
  destroyed: boolean;
}

export class VaultKvStandIn {
  private readonly versions = new Map<number, StoredVersion>();
  private currentVersion = 0;
  /** Every path the template read, in order, with its query string. */
  readonly reads: string[] = [];

  constructor(
    readonly mount: string,
    readonly path: string,
    private readonly maxVersions = 10,
  ) {}

  /** `vault kv put`: a new version. */
  put(data: Record<string, string>): number {
    this.currentVersion += 1;
    this.versions.set(this.currentVersion, {
      data,
      createdTime: timestamp(this.currentVersion),
      deletionTime: '',
      destroyed: false,
    });
    for (const version of [...this.versions.keys()].sort((a, b) => a - b)) {
      if (this.versions.size <= this.maxVersions) break;
      this.versions.delete(version);
    }
    return this.currentVersion;
  }

  /** `vault kv delete -versions=N` (soft delete). */
  delete(version: number): void {
    this.stored(version).deletionTime = timestamp(1000 + version);
  }

  /** `vault kv destroy -versions=N`. */
  destroy(version: number): void {
    this.stored(version).destroyed = true;
  }

  /** consul-template's `secret "<path>"` for this secret's metadata and data paths. */
  readonly read = (requestedPath: string): { Data: Record<string, unknown> } => {
    this.reads.push(requestedPath);
    const [path, query = ''] = requestedPath.split('?');
    if (path === `${this.mount}/metadata/${this.path}`) {
      if (query !== '') throw new Error(`unexpected query on a metadata read: ${query}`);
      return { Data: this.metadata() };
    }
    if (path !== `${this.mount}/data/${this.path}`)
      throw new Error(`permission denied: ${requestedPath} (the stand-in holds only ${this.mount}/${this.path})`);
    const versionMatch = /^version=(\d+)$/.exec(query);
    if (query !== '' && !versionMatch) throw new Error(`unexpected query: ${query}`);
    const version = versionMatch ? Number(versionMatch[1]) : this.currentVersion;
    const stored = this.versions.get(version);
    if (!stored) throw new Error(`no secret exists at ${path} (version ${version})`);
    // consul-template turns Vault's answer for a deleted version into this error, and a destroyed
    // version carries no data at all: either way the render fails.
    if (stored.deletionTime !== '') throw new Error(`no secret exists at ${path} (version ${version} is deleted)`);
    if (stored.destroyed) throw new Error(`no data at ${path} (version ${version} is destroyed)`);
    return {
      Data: {
        data: { ...stored.data },
        metadata: {
          created_time: stored.createdTime,
          custom_metadata: null,
          deletion_time: '',
          destroyed: false,
          version: new JsonNumber(String(version)),
        },
      },
    };
  };

  /** Every path the template could read, with what `read` gives or the error it throws. */
  responsesByPath(): Record<string, unknown> {
    const paths = [
      `${this.mount}/metadata/${this.path}`,
      ...[...this.versions.keys()].map((version) => `${this.mount}/data/${this.path}?version=${version}`),
    ];
    const responses: Record<string, unknown> = {};
    for (const path of paths) {
      try {
        responses[path] = this.read(path).Data;
      } catch (error) {
        responses[path] = { error: (error as Error).message };
      }
    }
    this.reads.length = 0;
    return responses;
  }

  private metadata(): Record<string, unknown> {
    const versions: Record<string, unknown> = {};
    for (const [version, stored] of this.versions) {
      versions[String(version)] = {
        created_time: stored.createdTime,
        deletion_time: stored.deletionTime,
        destroyed: stored.destroyed,
      };
    }
    const remaining = [...this.versions.keys()];
    return {
      cas_required: false,
      created_time: timestamp(1),
      current_version: new JsonNumber(String(this.currentVersion)),
      custom_metadata: null,
      delete_version_after: '0s',
      max_versions: new JsonNumber(String(this.maxVersions)),
      oldest_version: new JsonNumber(String(remaining.length ? Math.min(...remaining) : 0)),
      updated_time: timestamp(this.currentVersion),
      versions,
    };
  }

  private stored(version: number): StoredVersion {
    const stored = this.versions.get(version);
    if (!stored) throw new Error(`no version ${version}`);
    return stored;
  }
}

function timestamp(seconds: number): string {
  return new Date(Date.UTC(2026, 0, 1, 0, 0, seconds)).toISOString().replace('.000Z', '.000000000Z');
}
