/**
 * The Postgres a rewrap benchmark runs on: an embedded server of its own in a temp folder, or a
 * fresh database on DATABASE_URL's server (created here and dropped at the end); plus the CPU its
 * processes use, read from /proc, so the benchmark can say what Postgres costs per row.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../src/db/embedded';

export interface BenchDatabase {
  readonly url: string;
  /** Pids of the embedded server's processes (for CPU accounting); empty for a remote server. */
  serverPids(): number[];
  drop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export async function openBenchDatabase(keepData: boolean): Promise<BenchDatabase> {
  const name = `provsec_bench_${randomBytes(4).toString('hex')}`;
  let embedded: EmbeddedPostgresHandle | undefined;
  let stateDir: string | undefined;
  let adminUrl = process.env.DATABASE_URL;
  if (adminUrl === undefined) {
    stateDir = mkdtempSync(join(tmpdir(), 'provsec-bench-'));
    embedded = await startEmbeddedPostgres({ dataDir: join(stateDir, 'pg'), port: await freePort() });
    adminUrl = embedded.adminUrl;
  }
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const dataDir = stateDir && join(stateDir, 'pg');
  return {
    url: url.toString(),
    serverPids: () => (dataDir ? postgresPids(dataDir) : []),
    async drop() {
      if (embedded) {
        await embedded.stop();
        if (!keepData && stateDir) rmSync(stateDir, { recursive: true, force: true });
        return;
      }
      const cleanup = new Client({ connectionString: adminUrl });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${name}`);
      await cleanup.end();
    },
  };
}

/** The postmaster (first line of postmaster.pid) and its children. */
function postgresPids(dataDir: string): number[] {
  const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const pids = [postmaster];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster) pids.push(Number(entry));
    } catch {
      // The process ended between readdir and read.
    }
  }
  return pids;
}

/** CPU milliseconds (user + system) a process has used, from /proc (clock ticks of 10 ms). */
function processCpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

export function serverCpuMs(database: BenchDatabase, known: Map<number, number>): number {
  // Backends come and go: remember each pid's last reading so an exited one still counts.
  for (const pid of database.serverPids()) known.set(pid, Math.max(known.get(pid) ?? 0, processCpuMs(pid)));
  return [...known.values()].reduce((sum, ms) => sum + ms, 0);
}
