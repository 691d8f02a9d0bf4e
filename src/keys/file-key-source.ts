/**
 * The file key source: the key file the Vault Agent sidecar renders (KEY_FILE), hot-reloaded.
 * Invariants: a bad render (garbage, truncated, short or all-zero key, file gone) never replaces
 * the last good keyring; the file's content never reaches a log line or an error message; the
 * file's mode is logged, never enforced (the injector decides it, see `agent-inject-perms`).
 */
import type { BigIntStats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { BaseKeySource, type LoadedKeyring } from './base-key-source';
import { KeySourceLoadError } from './errors';
import { FileChangeWatcher } from './file-change-watcher';
import { MAX_KEY_FILE_BYTES, parseKeyFile } from './key-file-format';
import type { KeySourceDeps } from './key-source';

export interface FileKeySourceOptions {
  /** KEY_FILE. */
  readonly keyFile: string;
  /** Fallback stat poll for volumes where fs.watch misses events. Default 5000. */
  readonly pollIntervalMs?: number;
  /** Quiet time after a change event before re-reading (an in-place write comes as several events). Default 100. */
  readonly debounceMs?: number;
  /** false: rely on the poll alone. Default true. */
  readonly useFsWatch?: boolean;
}

export const FILE_SOURCE_DEFAULTS = { pollIntervalMs: 5000, debounceMs: 100, useFsWatch: true } as const;

const MISSING = 'missing';

export class FileKeySource extends BaseKeySource {
  private readonly keyFile: string;
  private readonly watcher: FileChangeWatcher;
  /** Identity of the file as last read (inode, size, times), so the poll re-reads only on change. */
  private lastReadSignature: string | undefined;
  /** The base's reload, handed over by watch(). */
  private reloadOnChange: (() => Promise<void>) | undefined;

  constructor(options: FileKeySourceOptions, deps: KeySourceDeps) {
    super('file', deps);
    this.keyFile = options.keyFile;
    this.watcher = new FileChangeWatcher({
      filePath: options.keyFile,
      pollIntervalMs: options.pollIntervalMs ?? FILE_SOURCE_DEFAULTS.pollIntervalMs,
      debounceMs: options.debounceMs ?? FILE_SOURCE_DEFAULTS.debounceMs,
      useFsWatch: options.useFsWatch ?? FILE_SOURCE_DEFAULTS.useFsWatch,
      logger: this.logger,
      hasChanged: () => this.hasChangedSinceLastRead(),
      // The base's reload records its own failures and never rejects.
      onChange: () => void this.reloadOnChange?.(),
    });
  }

  protected override watch(reload: () => Promise<void>): void {
    this.reloadOnChange = reload;
    this.watcher.start();
  }

  protected override stopWatching(): Promise<void> {
    this.watcher.stop();
    return Promise.resolve();
  }

  protected async loadKeyring(): Promise<LoadedKeyring> {
    let handle;
    try {
      handle = await open(this.keyFile, 'r');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unknown';
      if (code === 'ENOENT') {
        this.lastReadSignature = MISSING;
        throw new KeySourceLoadError(
          'missing',
          `the key file ${this.keyFile} does not exist (not rendered yet, or being replaced)`,
        );
      }
      throw new KeySourceLoadError('unreadable', `the key file ${this.keyFile} cannot be opened (${code})`);
    }
    try {
      // fstat on the open handle: the signature describes exactly the file we are about to read.
      const stats = await handle.stat({ bigint: true });
      this.lastReadSignature = signatureOf(stats);
      if (!stats.isFile())
        throw new KeySourceLoadError('unreadable', `the key file ${this.keyFile} is not a regular file`);
      if (stats.size > BigInt(MAX_KEY_FILE_BYTES))
        throw new KeySourceLoadError(
          'too_large',
          `the key file ${this.keyFile} is ${stats.size} bytes; a key file is under ${MAX_KEY_FILE_BYTES}`,
        );
      const content = await handle.readFile();
      try {
        const keyring = parseKeyFile(content.toString('utf8'));
        return { keyring, logDetails: { path: this.keyFile, fileMode: formatMode(stats.mode) } };
      } finally {
        // Best effort: the decoded string cannot be wiped, the buffer can.
        content.fill(0);
      }
    } catch (error) {
      throw isFileSystemError(error)
        ? new KeySourceLoadError(
            'unreadable',
            `the key file ${this.keyFile} cannot be read (${error.code ?? 'unknown'})`,
          )
        : error;
    } finally {
      await handle.close();
    }
  }

  private async hasChangedSinceLastRead(): Promise<boolean> {
    let signature: string;
    try {
      signature = signatureOf(await stat(this.keyFile, { bigint: true }));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      signature = MISSING;
    }
    return signature !== this.lastReadSignature;
  }
}

function signatureOf(stats: BigIntStats): string {
  return [stats.dev, stats.ino, stats.size, stats.mtimeNs, stats.ctimeNs].join(':');
}

/** "0640": the form an operator compares with `agent-inject-perms`. */
function formatMode(mode: bigint): string {
  return `0${(Number(mode) & 0o777).toString(8).padStart(3, '0')}`;
}

/** Node's fs errors carry `syscall`; our crypto errors also have a `code`, so that alone would not tell. */
function isFileSystemError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).syscall === 'string';
}
