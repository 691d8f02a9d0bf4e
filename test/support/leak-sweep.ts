/**
 * The secret leak sweep: after a workload, search every log line, every table row and every
 * response body it produced for the bytes of every secret it stored (and every KEK it used).
 * Invariant it checks: a provision secret leaves the service only in the `provisionSecret` field of
 * a 200 JSON answer to GET /v1/device-groups/<id>/provision-secret, for that group's own secret (a
 * JWE answer must not show it in any form); a KEK never leaves at all. Everywhere else, any
 * encoding of those bytes is a finding.
 *
 * The evidence is the real thing: captured log text (svc.logs(), a child's stdout), bodies as
 * the client received them, and `row_to_json` of every table in the database.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pool } from 'pg';

/** One way the bytes of a secret could be written down, e.g. in a log or a bytea column. */
export interface Needle {
  readonly form: string;
  readonly text: string;
  /** Hex is compared case-insensitively: code may print either case. */
  readonly caseInsensitive: boolean;
}

export interface LeakFinding {
  /** Where: `log:<label>`, `table:<name>`, `response:<METHOD path status>`. */
  readonly source: string;
  /** Whose bytes: a group id, or the label of a key. */
  readonly owner: string;
  readonly form: string;
}

export interface SweepReport {
  readonly findings: LeakFinding[];
  readonly counts: { secrets: number; responses: number; authorizedReads: number; logLines: number; tableRows: number };
}

/** A compact JWE answer: searched like any other body, since the secret must not show through it. */
const COMPACT_JWE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*){4}$/;
const SECRET_READ_PATH = /^\/v1\/device-groups\/([^/?]+)\/provision-secret(?:\?.*)?$/;

/**
 * Every encoding the sweep looks for: plain, JSON- and URL-escaped, hex, and base64 / base64url at
 * each of the three byte alignments (a secret inside a larger base64 blob encodes differently
 * depending on its offset mod 3). The 4-character groups that mix in neighbouring bytes are cut off.
 */
export function needlesFor(secret: string): Needle[] {
  const needles: Needle[] = [{ form: 'plain', text: secret, caseInsensitive: false }];
  const jsonEscaped = JSON.stringify(secret).slice(1, -1);
  if (jsonEscaped !== secret) needles.push({ form: 'json-escaped', text: jsonEscaped, caseInsensitive: false });
  const urlEncoded = encodeURIComponent(secret);
  if (urlEncoded !== secret) needles.push({ form: 'url-encoded', text: urlEncoded, caseInsensitive: false });
  return [...needles, ...binaryNeedles(Buffer.from(secret, 'utf8'))];
}

/** Hex and base64 / base64url at the three alignments: the forms raw bytes (a key) would take. */
export function binaryNeedles(bytes: Buffer): Needle[] {
  const needles: Needle[] = [{ form: 'hex', text: bytes.toString('hex'), caseInsensitive: true }];
  for (let offset = 0; offset < 3; offset += 1) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    const stable = encoded.slice(offset === 0 ? 0 : 4, -4);
    // Too short to be evidence of anything (it would match by chance).
    if (stable.length < 12) continue;
    needles.push({ form: `base64@${offset}`, text: stable, caseInsensitive: false });
    const urlSafe = stable.replace(/\+/g, '-').replace(/\//g, '_');
    if (urlSafe !== stable) needles.push({ form: `base64url@${offset}`, text: urlSafe, caseInsensitive: false });
  }
  return needles;
}

interface Haystack {
  readonly source: string;
  readonly text: string;
}

interface RecordedResponse {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly body: string;
}

/**
 * Collects what one workload produced. Test code records each secret it stores, each response it
 * receives and where the logs are; `sweep` then searches all of it.
 */
export class LeakEvidence {
  private readonly secretsByOwner = new Map<string, Set<string>>();
  private readonly keys = new Map<string, string>();
  private readonly responses: RecordedResponse[] = [];
  private readonly logSources = new Map<string, () => string>();

  /** `leaveForSuite: false` keeps planted test leaks (the sweep's own tests) out of the suite-wide sweep. */
  constructor(private readonly options: { leaveForSuite?: boolean } = {}) {}

  /** A provision secret the workload sent to the service for `groupId` (acknowledged or not). */
  storedSecret(groupId: string, secret: string): void {
    const owned = this.secretsByOwner.get(groupId) ?? new Set<string>();
    owned.add(secret);
    this.secretsByOwner.set(groupId, owned);
  }

  /** Key material (a KEK in hex) that must appear nowhere at all. */
  keyMaterial(label: string, keyHex: string): void {
    this.keys.set(label, keyHex.toLowerCase());
  }

  response(method: string, path: string, status: number, body: string): void {
    this.responses.push({ method: method.toUpperCase(), path, status, body });
  }

  /** A log to search at sweep time (read then, so it includes everything logged until the end). */
  logs(label: string, read: () => string): void {
    this.logSources.set(label, read);
  }

  get secretCount(): number {
    let count = 0;
    for (const owned of this.secretsByOwner.values()) count += owned.size;
    return count;
  }

  /**
   * Searches logs, responses and every table of each database for every recorded secret and key.
   * Also leaves this evidence for the suite-wide sweep (`assertNoLeaksAcrossSuite`), if one runs.
   */
  async sweep(databases: ReadonlyArray<{ label: string; pool: Pool }>): Promise<SweepReport> {
    const findings: LeakFinding[] = [];
    const haystacks: Haystack[] = [];
    let authorizedReads = 0;
    for (const response of this.responses) {
      const source = `response:${response.method} ${response.path} ${response.status}`;
      const groupId = authorizedReadGroup(response);
      if (groupId === undefined) {
        haystacks.push({ source, text: response.body });
        continue;
      }
      authorizedReads += 1;
      if (COMPACT_JWE.test(response.body)) {
        haystacks.push({ source, text: response.body });
        continue;
      }
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(response.body) as Record<string, unknown>;
      } catch {
        parsed = { unparsable: response.body };
      }
      // The one allowed place, and only for the group's own secret.
      if (
        typeof parsed.provisionSecret !== 'string' ||
        !this.secretsByOwner.get(groupId)?.has(parsed.provisionSecret)
      ) {
        findings.push({ source, owner: groupId, form: "a secret that is not this group's" });
      }
      haystacks.push({ source, text: JSON.stringify({ ...parsed, provisionSecret: '[allowed]' }) });
    }
    let logLines = 0;
    for (const [label, read] of this.logSources) {
      const text = read();
      logLines += text.split('\n').filter((line) => line.trim() !== '').length;
      haystacks.push({ source: `log:${label}`, text });
    }
    let tableRows = 0;
    for (const { label, pool } of databases) {
      for (const table of await dumpTables(pool)) {
        tableRows += table.rows;
        haystacks.push({ source: `table:${label}.${table.name}`, text: table.text });
      }
    }
    const owners = this.owners();
    if (this.options.leaveForSuite !== false) await leaveForSuiteSweep({ owners, haystacks, findings });
    findings.push(...searchHaystacks(owners.map(withNeedles), haystacks));
    return {
      findings,
      counts: { secrets: this.secretCount, responses: this.responses.length, authorizedReads, logLines, tableRows },
    };
  }

  private owners(): Owner[] {
    const owners: Owner[] = [];
    for (const [groupId, owned] of this.secretsByOwner)
      for (const secret of owned) owners.push({ owner: groupId, kind: 'secret', value: secret });
    for (const [label, keyHex] of this.keys) owners.push({ owner: `key:${label}`, kind: 'key', value: keyHex });
    return owners;
  }
}

/** Whose bytes to look for: a group's secret (text) or a key (hex). */
interface Owner {
  readonly owner: string;
  readonly kind: 'secret' | 'key';
  readonly value: string;
}

function withNeedles(owner: Owner): { owner: string; needles: Needle[] } {
  return {
    owner: owner.owner,
    needles: owner.kind === 'secret' ? needlesFor(owner.value) : binaryNeedles(Buffer.from(owner.value, 'hex')),
  };
}

/** The group of a 200 answer to GET .../provision-secret: the only response allowed to carry a secret. */
function authorizedReadGroup(response: RecordedResponse): string | undefined {
  if (response.method !== 'GET' || response.status !== 200) return undefined;
  const match = SECRET_READ_PATH.exec(response.path);
  if (!match?.[1]) return undefined;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return undefined;
  }
}

// ---- the suite-wide sweep: every file's evidence, searched for every file's secrets ----

interface LeftEvidence {
  readonly owners: Owner[];
  readonly haystacks: Haystack[];
  readonly findings: LeakFinding[];
}

const EVIDENCE_DIR_PREFIX = 'provsec-leak-evidence-';
/** Runs whose teardown did not sweep (interrupted, or no sweep wired) leave folders; old ones go. */
const STALE_EVIDENCE_MS = 6 * 60 * 60 * 1000;

/** One folder per jest run (the run's own Postgres URL names it), shared by the workers and the teardown. */
function suiteEvidenceDir(): string | undefined {
  const runKey = process.env.PROVSEC_TEST_ADMIN_URL;
  return runKey === undefined
    ? undefined
    : join(tmpdir(), `${EVIDENCE_DIR_PREFIX}${createHash('sha256').update(runKey).digest('hex').slice(0, 16)}`);
}

async function leaveForSuiteSweep(evidence: LeftEvidence): Promise<void> {
  const dir = suiteEvidenceDir();
  if (dir === undefined) return;
  for (const name of (await readdir(tmpdir())).filter((entry) => entry.startsWith(EVIDENCE_DIR_PREFIX))) {
    const stale = join(tmpdir(), name);
    const modifiedAtMs = await stat(stale).then(
      (stats) => stats.mtimeMs,
      () => Date.now(),
    );
    if (Date.now() - modifiedAtMs > STALE_EVIDENCE_MS) await rm(stale, { recursive: true, force: true });
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, `${process.pid}-${randomUUID()}.json`), JSON.stringify(evidence), { mode: 0o600 });
}

/**
 * For jest's global teardown: searches the evidence every test file left (logs, table dumps,
 * response bodies) for the secrets and keys of EVERY file, then deletes it. Throws when it finds
 * any; resolves to a one-line summary otherwise (or undefined when no file left evidence).
 */
export async function assertNoLeaksAcrossSuite(
  dir: string | undefined = suiteEvidenceDir(),
): Promise<string | undefined> {
  if (dir === undefined) return undefined;
  let files: string[];
  try {
    files = (await readdir(dir)).filter((name) => name.endsWith('.json'));
  } catch (error) {
    // No file of this run left evidence: nothing to sweep.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const owners = new Map<string, Owner>();
  const haystacks: Haystack[] = [];
  const findings: LeakFinding[] = [];
  for (const file of files) {
    const left = JSON.parse(await readFile(join(dir, file), 'utf8')) as LeftEvidence;
    for (const owner of left.owners) owners.set(`${owner.kind}:${owner.owner}:${owner.value}`, owner);
    haystacks.push(...left.haystacks);
    findings.push(...left.findings);
  }
  await rm(dir, { recursive: true, force: true });
  findings.push(...searchHaystacks([...owners.values()].map(withNeedles), haystacks));
  if (findings.length > 0)
    throw new Error(`secret leak sweep over the whole suite found:\n${describeFindings(findings)}`);
  return `leak sweep over the whole suite: ${owners.size} secrets and keys from ${files.length} files, searched in ${haystacks.length} logs, tables and responses: nothing found`;
}

/**
 * Joins the haystacks of one source into one text per source and searches each needle once per
 * source (thousands of secrets times thousands of bodies would be slow one pair at a time).
 */
function searchHaystacks(
  owners: ReadonlyArray<{ owner: string; needles: Needle[] }>,
  haystacks: readonly Haystack[],
): LeakFinding[] {
  const bySource = new Map<string, string[]>();
  for (const haystack of haystacks) {
    const kind = haystack.source.startsWith('response:') ? 'responses' : haystack.source;
    const texts = bySource.get(kind) ?? [];
    texts.push(haystack.text);
    bySource.set(kind, texts);
  }
  const findings: LeakFinding[] = [];
  for (const [kind, texts] of bySource) {
    const joined = texts.join('\n\u0000\n');
    const lowered = joined.toLowerCase();
    for (const { owner, needles } of owners) {
      for (const needle of needles) {
        const found = needle.caseInsensitive
          ? lowered.includes(needle.text.toLowerCase())
          : joined.includes(needle.text);
        if (found)
          findings.push({
            source: kind === 'responses' ? responseSourceAt(haystacks, needle) : kind,
            owner,
            form: needle.form,
          });
      }
    }
  }
  return findings;
}

/** Names the first response that holds the needle (the joined search only says that one does). */
function responseSourceAt(haystacks: readonly Haystack[], needle: Needle): string {
  const text = needle.caseInsensitive ? needle.text.toLowerCase() : needle.text;
  const hit = haystacks.find(
    (haystack) =>
      haystack.source.startsWith('response:') &&
      (needle.caseInsensitive ? haystack.text.toLowerCase() : haystack.text).includes(text),
  );
  return hit?.source ?? 'responses';
}

/** Every base table of the database, each row as JSON (bytea as `\x` hex), one row per line. */
export async function dumpTables(pool: Pool): Promise<Array<{ name: string; rows: number; text: string }>> {
  const tables = await pool.query<{ schema: string; name: string }>(
    `SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
      WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
      ORDER BY 1, 2`,
  );
  const dumps: Array<{ name: string; rows: number; text: string }> = [];
  for (const { schema, name } of tables.rows) {
    const quoted = `${quoteIdentifier(schema)}.${quoteIdentifier(name)}`;
    const rows = await pool.query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM ${quoted} t`);
    dumps.push({
      name: `${schema}.${name}`,
      rows: rows.rowCount ?? rows.rows.length,
      text: rows.rows.map((row) => row.row).join('\n'),
    });
  }
  return dumps;
}

function quoteIdentifier(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}

/** One line per finding, for a failure message (owners and forms only, never the bytes). */
export function describeFindings(findings: readonly LeakFinding[]): string {
  return findings.map((finding) => `${finding.form} bytes of ${finding.owner} in ${finding.source}`).join('\n');
}
