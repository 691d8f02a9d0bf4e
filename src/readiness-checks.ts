/**
 * What /readyz asks before the service takes traffic: the database answers, every migration in
 * sql/ is applied, a keyring is loaded; and, without failing readiness, whether stored rows need a
 * KEK the source no longer holds.
 */
import type { Pool } from 'pg';
import { pendingMigrations, type MigrationFile } from './db/migrate';
import type { ReadinessCheck } from './http/health-routes';
import type { KeySource } from './keys';
import type { KekUsageCounter } from './rotation/kek-usage';
import { keyStatus } from './service/key-status';
import type { ServingCertificate } from './tls/serving-certificate';

export function databaseCheck(pool: Pick<Pool, 'query'>): ReadinessCheck {
  return {
    name: 'database',
    check: async () => {
      await pool.query('SELECT 1');
      return { ok: true };
    },
  };
}

/** `files` are read once at start-up: a probe only asks the database which are recorded. */
export function migrationsCheck(pool: Pick<Pool, 'query'>, files: readonly MigrationFile[]): ReadinessCheck {
  return {
    name: 'migrations',
    check: async () => {
      const pending = await pendingMigrations(pool, files);
      return pending.length === 0 ? { ok: true } : { ok: false, detail: `pending: ${pending.join(', ')}` };
    },
  };
}

/** Not ready until a keyring is loaded; afterwards a source outage does not flip readiness. */
export function keyringCheck(keySource: Pick<KeySource, 'status' | 'currentKeyring'>): ReadinessCheck {
  return {
    name: 'keyring',
    check: () => {
      const status = keySource.status();
      if (!keySource.currentKeyring())
        return Promise.resolve({
          ok: false,
          detail: `no keyring loaded from the ${status.kind} key source${status.lastError ? ` (${status.lastError})` : ''}`,
        });
      return Promise.resolve(
        status.state === 'degraded'
          ? { ok: true, detail: `serving the cached keyring; last reload failed: ${status.lastError ?? 'unknown'}` }
          : { ok: true },
      );
    },
  };
}

/**
 * Rows under a KEK the source no longer has cannot be opened (reads fail closed), but every other
 * row can: readiness stays up and reports it rather than taking the whole service out.
 */
export function keksForStoredRowsCheck(
  keySource: Pick<KeySource, 'status' | 'currentKeyring' | 'pendingKek'>,
  usage: KekUsageCounter,
): ReadinessCheck {
  return {
    name: 'storedKeks',
    check: async () => {
      if (!keySource.currentKeyring()) return { ok: true };
      const status = await keyStatus(keySource, usage);
      const missing = status.keys.filter((entry) => !entry.available && entry.rows > 0);
      if (missing.length === 0) return { ok: true };
      return {
        ok: true,
        detail: `rows under KEKs the ${status.source.kind} source does not hold: ${missing.map((entry) => `${entry.kekId} (${entry.rows})`).join(', ')}`,
      };
    },
  };
}

/**
 * The serving certificate: a refused reload does not fail readiness (the last good pair serves) but
 * is shown; a served certificate past its notAfter does, since every verifying client refuses it.
 */
export function servingCertificateCheck(
  certificate: Pick<ServingCertificate, 'status'>,
  now: () => Date = () => new Date(),
): ReadinessCheck {
  return {
    name: 'tlsCertificate',
    check: () => {
      const { serialNumber, notAfter, lastReloadFailure } = certificate.status();
      if (now().getTime() >= notAfter.getTime())
        return Promise.resolve({
          ok: false,
          detail: `the served certificate (serial ${serialNumber}) expired at ${notAfter.toISOString()}`,
        });
      return Promise.resolve(
        lastReloadFailure === undefined
          ? { ok: true }
          : {
              ok: true,
              detail: `serving certificate serial ${serialNumber} (notAfter ${notAfter.toISOString()}); the reload at ${lastReloadFailure.at.toISOString()} was refused: ${lastReloadFailure.reason}`,
            },
      );
    },
  };
}
