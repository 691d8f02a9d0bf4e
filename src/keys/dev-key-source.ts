/**
 * The dev key source: a random KEK kept in `<stateDir>/dev-kek.json` (single-key form, mode 0600),
 * made on first start and reused afterwards, so a developer's rows survive restarts.
 * Invariants: refused in production (see create-key-source.ts); the file is created whole or not
 * at all and is never overwritten; every start logs a loud warning.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BaseKeySource, type LoadedKeyring } from './base-key-source';
import { KeySourceLoadError } from './errors';
import { formatSingleKeyFile, parseKeyFile } from './key-file-format';
import type { KeySourceDeps } from './key-source';

export interface DevKeySourceOptions {
  /** PROVSEC_STATE_DIR. */
  readonly stateDir: string;
}

export const DEV_KEK_FILE_NAME = 'dev-kek.json';
const OWNER_ONLY = 0o600;

export class DevKeySource extends BaseKeySource {
  readonly keyFile: string;

  constructor(
    private readonly options: DevKeySourceOptions,
    deps: KeySourceDeps,
  ) {
    super('dev', deps);
    this.keyFile = join(options.stateDir, DEV_KEK_FILE_NAME);
  }

  protected override announce(): void {
    this.logger.warn(
      { path: this.keyFile },
      'DEV KEY SOURCE IN USE: the KEK is a random key stored unencrypted on this disk. Anything it protects is only as safe as that file. Never use KEY_SOURCE=dev in production.',
    );
  }

  protected async loadKeyring(): Promise<LoadedKeyring> {
    try {
      const created = await this.createKeyFileOnce();
      const keyFileText = await readFile(this.keyFile, 'utf8');
      const mode = (await stat(this.keyFile)).mode & 0o777;
      if ((mode & 0o077) !== 0)
        this.logger.warn(
          { path: this.keyFile, fileMode: `0${mode.toString(8)}` },
          'the dev KEK file is readable by other users',
        );
      return {
        keyring: parseKeyFile(keyFileText),
        logDetails: { path: this.keyFile, fileMode: `0${mode.toString(8)}`, created },
      };
    } catch (error) {
      if (error instanceof KeySourceLoadError) {
        // A broken dev key file is the developer's to delete; we never overwrite it (rows may depend on it).
        throw new KeySourceLoadError(
          error.reason,
          `${this.keyFile}: ${error.message}; delete the file to start over with a new key (data encrypted under the old one is lost)`,
        );
      }
      throw new KeySourceLoadError(
        'unreadable',
        `cannot create or read ${this.keyFile} (${(error as NodeJS.ErrnoException).code ?? 'unknown'})`,
      );
    }
  }

  /**
   * Writes a complete temp file with O_EXCL ('wx', 0600), then link()s it into place: link fails
   * with EEXIST instead of replacing, so two processes starting at once cannot both win, and no
   * reader ever sees a half-written key file. Returns whether this call created the file.
   */
  private async createKeyFileOnce(): Promise<boolean> {
    await mkdir(this.options.stateDir, { recursive: true, mode: 0o700 });
    const tempFile = `${this.keyFile}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    const keyBytes = randomBytes(32);
    try {
      const handle = await open(tempFile, 'wx', OWNER_ONLY);
      try {
        await handle.writeFile(formatSingleKeyFile(keyBytes.toString('hex')));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await link(tempFile, this.keyFile);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    } finally {
      keyBytes.fill(0);
      await unlink(tempFile).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT')
          this.logger.warn({ code: error.code ?? null }, 'could not remove the dev KEK temp file');
      });
    }
  }
}
