/**
 * The listener's certificate pair (TLS_CERT_FILE, TLS_KEY_FILE), hot-reloaded: when either file
 * changes (the Vault Agent renames a new render over it, cert-manager's Secret volume swaps its
 * symlink, someone rewrites it in place), the new pair is read, checked, and handed to the listener
 * for NEW connections; established ones keep theirs.
 * Invariants: only a pair that passed parseCertificatePair is ever handed out; a refused pair leaves
 * the last good one serving; no log line, metric or status carries key bytes.
 */
import type { BigIntStats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { CoalescedRuns } from '../keys/coalesced-runs';
import { FileChangeWatcher } from '../keys/file-change-watcher';
import {
  CertificatePairError,
  parseCertificatePair,
  type CertificatePair,
  type CertificatePairFailureReason,
} from './certificate-pair';
import { createTlsMetrics, type TlsMetrics } from './tls-metrics';

/** A certificate chain and key are a few KiB; anything much larger is not one. */
const MAX_PEM_FILE_BYTES = 1024 * 1024;

export interface ServingCertificateOptions {
  readonly certFile: string;
  /** May be the same file as certFile (one combined PEM, as the agent's pkiCert template writes it). */
  readonly keyFile: string;
  /** Fallback stat poll for volumes where fs.watch misses events. Default 5000. */
  readonly pollIntervalMs?: number;
  /** Quiet time after a change event before re-reading (an in-place write comes as several events). Default 100. */
  readonly debounceMs?: number;
  readonly useFsWatch?: boolean;
  /** The clock validity is checked against; tests move it. */
  readonly now?: () => Date;
}

export interface ServingCertificateStatus {
  readonly serialNumber: string;
  readonly notAfter: Date;
  readonly lastReloadFailure: { readonly reason: CertificatePairFailureReason; readonly at: Date } | undefined;
}

export class ServingCertificate {
  private pair: CertificatePair;
  private lastReadSignature: string;
  private lastReloadFailure: ServingCertificateStatus['lastReloadFailure'];
  private readonly watchers: FileChangeWatcher[];
  private renewalListener: ((pair: CertificatePair) => void) | undefined;
  /** One reload at a time; change events that arrive meanwhile fold into one more pass. */
  private readonly reloads = new CoalescedRuns(
    () => this.reload(),
    () => this.stopped,
  );
  private stopped = false;

  /** Reads and checks the pair once; a bad pair at start-up is an error (there is nothing to fall back to). */
  static async load(
    options: ServingCertificateOptions,
    deps: { logger: Logger; registry: Registry },
  ): Promise<ServingCertificate> {
    const now = options.now ?? (() => new Date());
    const signature = await signatureOf(options.certFile, options.keyFile);
    const pair = await readPair(options.certFile, options.keyFile, now());
    return new ServingCertificate(options, deps.logger, createTlsMetrics(deps.registry), pair, signature, now);
  }

  private constructor(
    private readonly options: ServingCertificateOptions,
    private readonly logger: Logger,
    private readonly metrics: TlsMetrics,
    pair: CertificatePair,
    signature: string,
    private readonly now: () => Date,
  ) {
    this.pair = pair;
    this.lastReadSignature = signature;
    this.metrics.setServedCertificate(pair);
    const paths = [...new Set([options.certFile, options.keyFile])];
    this.watchers = paths.map(
      (filePath) =>
        new FileChangeWatcher({
          filePath,
          fileLabel: 'TLS certificate file',
          pollIntervalMs: options.pollIntervalMs ?? 5000,
          debounceMs: options.debounceMs ?? 100,
          useFsWatch: options.useFsWatch ?? true,
          logger,
          hasChanged: () => this.hasChangedSinceLastRead(),
          onChange: () => void this.requestReload(),
        }),
    );
    logger.info(describe(pair), 'serving certificate loaded');
  }

  current(): CertificatePair {
    return this.pair;
  }

  /** The listener registers here to swap its secure context; called with each newly accepted pair. */
  onRenewal(listener: (pair: CertificatePair) => void): void {
    this.renewalListener = listener;
  }

  start(): void {
    for (const watcher of this.watchers) watcher.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const watcher of this.watchers) watcher.stop();
    await this.reloads.settled();
  }

  status(): ServingCertificateStatus {
    return {
      serialNumber: this.pair.serialNumber,
      notAfter: this.pair.notAfter,
      lastReloadFailure: this.lastReloadFailure,
    };
  }

  /** Reloads the pair; while a reload runs, requests fold into one more pass after it. */
  requestReload(): Promise<void> {
    return this.reloads.request();
  }

  private async reload(): Promise<void> {
    // Taken before reading: if a file changes during the read, the poll sees a new signature later.
    this.lastReadSignature = await signatureOf(this.options.certFile, this.options.keyFile);
    let pair: CertificatePair;
    try {
      pair = await readPair(this.options.certFile, this.options.keyFile, this.now());
    } catch (error) {
      if (!(error instanceof CertificatePairError)) throw error;
      this.lastReloadFailure = { reason: error.reason, at: this.now() };
      this.metrics.recordFailure(error.reason);
      this.logger.warn(
        {
          reason: error.reason,
          certFile: this.options.certFile,
          keyFile: this.options.keyFile,
          ...describe(this.pair),
        },
        `serving certificate reload refused (${error.message}); the previous certificate keeps serving`,
      );
      return;
    }
    if (pair.certificateChainPem === this.pair.certificateChainPem && pair.privateKeyPem === this.pair.privateKeyPem)
      return;
    this.pair = pair;
    this.lastReloadFailure = undefined;
    this.metrics.setServedCertificate(pair);
    this.metrics.recordReload();
    this.renewalListener?.(pair);
    this.logger.info(describe(pair), 'serving certificate reloaded; new connections get it');
  }

  private async hasChangedSinceLastRead(): Promise<boolean> {
    return (await signatureOf(this.options.certFile, this.options.keyFile)) !== this.lastReadSignature;
  }
}

async function readPair(certFile: string, keyFile: string, now: Date): Promise<CertificatePair> {
  const [certificateText, keyText] = await Promise.all([readPemFile(certFile), readPemFile(keyFile)]);
  return parseCertificatePair(certificateText, keyText, now);
}

async function readPemFile(path: string): Promise<string> {
  let content: Buffer;
  try {
    content = await readFile(path);
  } catch {
    throw new CertificatePairError('unreadable');
  }
  try {
    if (content.length > MAX_PEM_FILE_BYTES) throw new CertificatePairError('unreadable');
    return content.toString('utf8');
  } finally {
    // Best effort, as for the key file: the string copy cannot be wiped, the buffer can.
    content.fill(0);
  }
}

/** Identity of both files (inode, size, times), so the poll re-reads only on change; "missing" if one is gone. */
async function signatureOf(certFile: string, keyFile: string): Promise<string> {
  const stats = await Promise.all(
    [certFile, keyFile].map((path) => stat(path, { bigint: true }).catch(() => undefined)),
  );
  return stats.map((entry) => (entry ? fileSignature(entry) : 'missing')).join('|');
}

function fileSignature(stats: BigIntStats): string {
  return [stats.dev, stats.ino, stats.size, stats.mtimeNs, stats.ctimeNs].join(':');
}

function describe(pair: CertificatePair): Record<string, string> {
  return { serialNumber: pair.serialNumber, subject: pair.subject, notAfter: pair.notAfter.toISOString() };
}
