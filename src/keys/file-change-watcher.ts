/**
 * Notices when one file may have changed. Watches the file's DIRECTORY, because the Vault Agent
 * (consul-template) renders to a temp file and renames it over the target: a watch on the old
 * inode would go quiet after the first re-render. fs.watch misses events on some volumes (network
 * and some overlay filesystems), so a slow poll asks `hasChanged` as a fallback.
 * Bursts of events (truncate, then write) are debounced into one signal.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';

export interface FileChangeWatcherOptions {
  readonly filePath: string;
  /** What the file is, for log lines ("key file", "TLS certificate file"). Default "key file". */
  readonly fileLabel?: string;
  readonly pollIntervalMs: number;
  readonly debounceMs: number;
  /** false: poll only (for volumes where inotify never fires). */
  readonly useFsWatch: boolean;
  readonly logger: Logger;
  /** Cheap check used by the poll (stat, not read). */
  readonly hasChanged: () => Promise<boolean>;
  readonly onChange: () => void;
}

export class FileChangeWatcher {
  private directoryWatcher: FSWatcher | undefined;
  private watchFailureLogged = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly options: FileChangeWatcherOptions) {}

  private get fileLabel(): string {
    return this.options.fileLabel ?? 'key file';
  }

  start(): void {
    this.running = true;
    this.ensureDirectoryWatch();
    this.schedulePoll();
  }

  stop(): void {
    this.running = false;
    this.directoryWatcher?.close();
    this.directoryWatcher = undefined;
    clearTimeout(this.pollTimer);
    clearTimeout(this.debounceTimer);
  }

  private signalSoon(): void {
    if (!this.running) return;
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      if (this.running) this.options.onChange();
    }, this.options.debounceMs);
    this.debounceTimer.unref();
  }

  private ensureDirectoryWatch(): void {
    if (!this.options.useFsWatch || this.directoryWatcher || !this.running) return;
    const fileName = basename(this.options.filePath);
    try {
      const watcher = watch(dirname(this.options.filePath), { persistent: false }, (_event, changedName) => {
        // Events for sibling files (the agent's temp file) are noise; a null name means "unknown", so check.
        if (changedName === null || changedName === fileName) this.signalSoon();
      });
      watcher.on('error', (error: NodeJS.ErrnoException) => {
        this.options.logger.warn(
          { code: error.code ?? null },
          `${this.fileLabel} directory watch failed; polling until it can be watched again`,
        );
        watcher.close();
        if (this.directoryWatcher === watcher) this.directoryWatcher = undefined;
      });
      this.directoryWatcher = watcher;
      this.watchFailureLogged = false;
    } catch (error) {
      // Typically the directory does not exist yet (the agent has not rendered); the poll retries.
      if (!this.watchFailureLogged) {
        this.options.logger.warn(
          { code: (error as NodeJS.ErrnoException).code ?? null },
          `cannot watch the ${this.fileLabel} directory yet; polling`,
        );
        this.watchFailureLogged = true;
      }
    }
  }

  private schedulePoll(): void {
    if (!this.running) return;
    this.pollTimer = setTimeout(() => void this.poll(), this.options.pollIntervalMs);
    this.pollTimer.unref();
  }

  private async poll(): Promise<void> {
    try {
      this.ensureDirectoryWatch();
      if (this.running && (await this.options.hasChanged())) this.signalSoon();
    } catch (error) {
      this.options.logger.warn(
        { errorName: error instanceof Error ? error.name : typeof error },
        `${this.fileLabel} poll failed`,
      );
    } finally {
      this.schedulePoll();
    }
  }
}
