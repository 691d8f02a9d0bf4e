/**
 * How many stored secrets each KEK wraps: for GET /v1/keys, the rows-per-KEK metric, and readiness
 * (a KEK that rows still need but the source no longer has). Counting scans the kek_id index, so
 * the result is cached for a few seconds rather than recounted on every scrape and probe.
 */
import type { Pool } from 'pg';

export interface KekUsage {
  readonly kekId: string;
  readonly rows: number;
}

const CACHE_MS = 5000;

export function createKekUsageCounter(pool: Pool, now: () => number = Date.now) {
  let cached: { at: number; usage: Promise<KekUsage[]> } | undefined;

  async function countNow(): Promise<KekUsage[]> {
    const result = await pool.query<{ kek_id: string; rows: string }>(
      'SELECT kek_id, count(*) AS rows FROM ota_groups WHERE kek_id IS NOT NULL GROUP BY kek_id ORDER BY kek_id',
    );
    return result.rows.map((row) => ({ kekId: row.kek_id, rows: Number(row.rows) }));
  }

  return {
    /** Rows per KEK id, at most a few seconds old. */
    usage(options: { fresh?: boolean } = {}): Promise<KekUsage[]> {
      if (!options.fresh && cached && now() - cached.at < CACHE_MS) return cached.usage;
      const usage = countNow();
      cached = { at: now(), usage };
      // A failed count must not be served from the cache.
      usage.catch(() => {
        if (cached?.usage === usage) cached = undefined;
      });
      return usage;
    },
  };
}

export type KekUsageCounter = ReturnType<typeof createKekUsageCounter>;
