/**
 * Where a V8 CPU profile (`node --cpu-prof`) spent its time, by concern: token verification,
 * logging, HTTP framework, database client, crypto, metrics... Each sample is charged to the
 * nearest frame, from the leaf up, that belongs to a package or to one of our source folders, so
 * time in node core (a native signature check, a socket write) counts for whoever called it.
 *
 * Shares count samples, not the time between them: on a busy machine the process is often
 * descheduled, and the gap before the next sample would be charged to whatever frame it was
 * preempted in (usually a syscall), which is waiting, not work.
 *
 * `node dist/bench/profile-summary.js <file.cpuprofile> [--top 25]`
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Which owner a frame belongs to: `npm:<package>`, `src/<folder>`, a V8 pseudo-frame, or undefined (node core, keep walking). */
export function frameOwner(frame: ProfileNode['callFrame']): string | undefined {
  if (frame.functionName === '(garbage collector)') return 'gc';
  if (frame.functionName === '(idle)') return 'idle';
  if (frame.functionName === '(program)') return 'program';
  const url = frame.url;
  const packageMatch = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*node_modules\/)/.exec(url);
  if (packageMatch?.[1]) return `npm:${packageMatch[1]}`;
  // The access log is logging, though it lives with the HTTP layer.
  if (url.endsWith('/dist/src/http/access-log.js')) return 'src/http/access-log';
  const sourceMatch = /\/dist\/(src|bench|scripts)\/([^/]+)/.exec(url);
  if (sourceMatch)
    return sourceMatch[2]?.endsWith('.js')
      ? `${sourceMatch[1]}/${sourceMatch[2].replace(/\.js$/, '')}`
      : `${sourceMatch[1]}/${sourceMatch[2]}`;
  return undefined;
}

/** The concerns the benchmark reports, from the owners above. Unlisted packages are "other packages". */
const CONCERNS: ReadonlyArray<readonly [string, RegExp]> = [
  ['token verification (jose, src/auth)', /^(npm:jose|src\/auth)$/],
  [
    'logging (pino, sonic-boom, src/log, the access log)',
    /^(npm:pino.*|npm:sonic-boom|npm:thread-stream|npm:fast-redact|npm:@pinojs\/.*|npm:quick-format-unescaped|npm:safe-stable-stringify|npm:atomic-sleep|src\/log|src\/http\/access-log)$/,
  ],
  [
    'HTTP framework (express, router, body-parser, helmet...)',
    /^npm:(express|router|body-parser|raw-body|helmet|finalhandler|send|on-finished|on-headers|type-is|content-type|mime-types|mime-db|qs|cookie|accepts|negotiator|depd|debug|ms|vary|fresh|etag|statuses|http-errors|iconv-lite|parseurl|path-to-regexp|encodeurl|escape-html|media-typer|merge-descriptors|proxy-addr|range-parser|forwarded|ipaddr\.js|serve-static|setprototypeof|inherits|toidentifier|bytes|unpipe|ee-first|methods|utils-merge|content-disposition|once|wrappy|is-promise)$/,
  ],
  ['our HTTP layer (src/http)', /^src\/http$/],
  [
    'database client (pg)',
    /^npm:(pg|pg-pool|pg-protocol|pg-types|pg-connection-string|pgpass|postgres-.*|split2|buffer-writer|packet-reader)$/,
  ],
  ['envelope crypto (@noble/ciphers, src/crypto)', /^(npm:@noble\/.*|src\/crypto)$/],
  ['metrics (prom-client, src/metrics)', /^(npm:prom-client|npm:tdigest|npm:bintrees|src\/metrics)$/],
  ['rate limit (express-rate-limit)', /^npm:express-rate-limit$/],
  ['validation (zod)', /^npm:zod$/],
  ['service, store, audit, keys (src)', /^src\/(service|store|audit|keys|rotation|db|runtime|config|main)$/],
  ['garbage collection', /^gc$/],
  ['V8/native, unattributed', /^program$/],
  ['idle', /^idle$/],
  ['node core (no caller of ours)', /^node-core$/],
];

export interface ProfileBreakdown {
  readonly totalSamples: number;
  /** Samples not in (idle). */
  readonly busySamples: number;
  readonly wallMs: number;
  readonly byConcern: ReadonlyArray<{ readonly concern: string; readonly samples: number }>;
  readonly byOwner: ReadonlyArray<{ readonly owner: string; readonly samples: number }>;
  readonly topFunctions: ReadonlyArray<{ readonly name: string; readonly selfSamples: number }>;
}

export function analyzeProfile(profile: CpuProfile, topCount = 25): ProfileBreakdown {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);

  const ownerCache = new Map<number, string>();
  const ownerOfSample = (leafId: number): string => {
    const cached = ownerCache.get(leafId);
    if (cached !== undefined) return cached;
    let owner = 'node-core';
    for (let id: number | undefined = leafId; id !== undefined; id = parentOf.get(id)) {
      const frame = byId.get(id)?.callFrame;
      const found = frame ? frameOwner(frame) : undefined;
      if (found !== undefined) {
        owner = found;
        break;
      }
    }
    ownerCache.set(leafId, owner);
    return owner;
  };

  const ownerSamples = new Map<string, number>();
  const selfSamples = new Map<number, number>();
  for (const nodeId of profile.samples) {
    const owner = ownerOfSample(nodeId);
    ownerSamples.set(owner, (ownerSamples.get(owner) ?? 0) + 1);
    selfSamples.set(nodeId, (selfSamples.get(nodeId) ?? 0) + 1);
  }

  const concernSamples = new Map<string, number>();
  for (const [owner, samples] of ownerSamples) {
    const concern = CONCERNS.find(([, pattern]) => pattern.test(owner))?.[0] ?? 'other packages';
    concernSamples.set(concern, (concernSamples.get(concern) ?? 0) + samples);
  }

  const functionSamples = new Map<string, number>();
  for (const [nodeId, samples] of selfSamples) {
    const frame = byId.get(nodeId)?.callFrame;
    if (!frame) continue;
    const where = frame.url ? `${frame.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${frame.lineNumber + 1}` : '';
    const name = `${frame.functionName || '(anonymous)'} ${where}`.trim();
    functionSamples.set(name, (functionSamples.get(name) ?? 0) + samples);
  }

  const sorted = <K>(map: Map<K, number>) => [...map.entries()].sort((a, b) => b[1] - a[1]);
  const totalSamples = profile.samples.length;
  return {
    totalSamples,
    busySamples: totalSamples - (ownerSamples.get('idle') ?? 0),
    wallMs: profile.timeDeltas.reduce((sum, delta) => sum + delta, 0) / 1000,
    byConcern: sorted(concernSamples).map(([concern, samples]) => ({ concern, samples })),
    byOwner: sorted(ownerSamples).map(([owner, samples]) => ({ owner, samples })),
    topFunctions: sorted(functionSamples)
      .filter(([name]) => name !== '(idle)')
      .slice(0, topCount)
      .map(([name, samples]) => ({ name, selfSamples: samples })),
  };
}

export function formatBreakdown(breakdown: ProfileBreakdown): string {
  const share = (samples: number) => `${((100 * samples) / breakdown.busySamples).toFixed(1).padStart(5)}%`;
  const lines = [
    `${breakdown.busySamples} busy samples of ${breakdown.totalSamples} over ${(breakdown.wallMs / 1000).toFixed(1)} s (shares are of busy samples)`,
    '',
    'by concern:',
  ];
  for (const { concern, samples } of breakdown.byConcern)
    if (concern !== 'idle') lines.push(`  ${share(samples)}  ${String(samples).padStart(7)}  ${concern}`);
  lines.push('', 'by owner (package or source folder):');
  for (const { owner, samples } of breakdown.byOwner.slice(0, 20))
    if (owner !== 'idle') lines.push(`  ${share(samples)}  ${String(samples).padStart(7)}  ${owner}`);
  lines.push('', 'top functions by self samples:');
  for (const { name, selfSamples } of breakdown.topFunctions)
    lines.push(`  ${share(selfSamples)}  ${String(selfSamples).padStart(7)}  ${name}`);
  return lines.join('\n');
}

if (require.main === module) {
  const { values, positionals } = parseArgs({
    options: { top: { type: 'string', default: '25' } },
    allowPositionals: true,
  });
  const file = positionals[0];
  if (file === undefined) {
    process.stderr.write('usage: node dist/bench/profile-summary.js <file.cpuprofile> [--top 25]\n');
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(`${formatBreakdown(analyzeProfile(profile, Number(values.top)))}\n`);
}
