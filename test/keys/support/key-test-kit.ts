/**
 * Shared helpers for the key-source tests: captured logs (pino into memory), the "no key material
 * in the logs" check, polling for an eventual condition, metric reads and temp folders.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { Registry } from 'prom-client';

export interface CapturedLogs {
  readonly logger: Logger;
  text(): string;
  records(): Array<Record<string, unknown>>;
}

export function captureLogs(): CapturedLogs {
  const lines: string[] = [];
  const logger = pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
  return {
    logger,
    text: () => lines.join(''),
    records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** Every spelling a key could take in a log line: hex both cases, base64, base64url, raw bytes as latin1 and utf8. */
export function keySpellings(key: Uint8Array | string): string[] {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'hex') : Buffer.from(key);
  const hex = bytes.toString('hex');
  const spellings = [
    hex,
    hex.toUpperCase(),
    bytes.toString('base64'),
    bytes.toString('base64url'),
    bytes.toString('latin1'),
    bytes.toString('utf8'),
  ];
  // Half of the hex digits is still key material (a truncated render must not leak either).
  spellings.push(hex.slice(0, 32), hex.slice(0, 32).toUpperCase());
  return spellings.filter((spelling) => spelling.length >= 16);
}

export function expectNoKeyMaterial(logText: string, keys: ReadonlyArray<Uint8Array | string>): void {
  for (const key of keys) {
    for (const spelling of keySpellings(key)) {
      if (logText.includes(spelling))
        throw new Error(`key material (${spelling.length} chars of one spelling) found in the logs`);
    }
  }
}

export function randomKeyHex(upperCase = false): string {
  const hex = randomBytes(32).toString('hex');
  return upperCase ? hex.toUpperCase() : hex;
}

export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
  intervalMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Sum of a counter/gauge's values whose labels include `labels`. */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const { values } = await metric.get();
  return values
    .filter((value) =>
      Object.entries(labels).every(
        ([label, expected]) => String((value.labels as Record<string, unknown>)[label]) === expected,
      ),
    )
    .reduce((sum, value) => sum + value.value, 0);
}

export async function withTempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `provsec-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function newRegistry(): Registry {
  return new Registry();
}
