/**
 * `npm run bench`: what the service's security costs in throughput, latency and memory.
 *
 * In one run, on a fresh embedded Postgres of its own, it starts the compiled service
 * (dist/src/main.js) as a separate process in its production configuration (file key source,
 * JWKS file, policy file, LOG_LEVEL=info, stdout to a log file), seeds groups through the API, then
 * drives it with autocannon from another process: secret reads with the tokens of several worker
 * identities, and creations with unique ids. The baseline (bench/baseline-server.ts: bare express +
 * pg, the same statements, no auth, no crypto) is driven the same way. Service and baseline rounds
 * alternate (S B, B S, S B...) so machine drift falls on both.
 *
 * A benchmark, not a test: it prints the figures and whether the targets were met, writes
 * bench/results/<name>.json and .svg, and exits 0 either way (1 only if the run itself failed).
 * `--profile` runs service and baseline under `--cpu-prof` and prints where their CPU time went
 * (profiles in bench/results/profiles/<name>/, not committed).
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { compactDecrypt } from 'jose';
import { Client } from 'pg';
import { APP_ROOT } from '../src/app-root';
import { renderChart } from './chart';
import type { LoadJob, LoadResult, Scenario } from './load-driver';
import {
  describeMachine,
  gitCommit,
  machineBusyFraction,
  machineCpuSample,
  memoryStatus,
  processCpuMs,
  sampleResidentMemory,
} from './proc-stats';
import { analyzeProfile, formatBreakdown, type CpuProfile, type ProfileBreakdown } from './profile-summary';
import {
  createBenchIssuer,
  freePort,
  startBenchDatabase,
  benchTlsFiles,
  rerunTrustingBenchCa,
  startServerProcess,
  writeKeyFile,
  type BenchTlsFiles,
  type BenchIssuer,
  type ServerProcess,
  type TokenAlgorithm,
} from './stack';
import {
  formatSummary,
  summarizeScenario,
  TARGET_PEAK_RSS_BYTES,
  type BenchConfiguration,
  type BenchResults,
  type RoundRecord,
  type Target,
} from './summary';

/**
 * The heap the service gets in its pod: Node 20 sizes V8 from the cgroup memory limit (256Mi in
 * k8s/base/deployment.yaml) to a 256 MiB old generation and 1 MiB semi-spaces, and the
 * deployment raises the semi-spaces to 16 MiB with NODE_OPTIONS. These flags reproduce that
 * (checked against a real 256 MiB cgroup: heap_size_limit 304 MiB with that NODE_OPTIONS, 259 MiB
 * and the 1 MiB semi-spaces without, which `--max-semi-space-size=1` reproduces). Without a
 * limit, on a machine with a lot of memory, V8 takes a 4 GB old generation and lets garbage pile
 * up: the RSS measured would say nothing about the pod.
 */
const DEPLOYED_HEAP_FLAGS = '--max-old-space-size=256 --max-semi-space-size=16';
/** The config's ceiling: the bench measures serving, not the limiter's 429s (it still runs per request). */
const SECRET_READ_RATE_LIMIT_PER_MINUTE = 1_000_000;
/** Characters of each provision secret (ASCII, so also bytes). */
const PROVISION_SECRET_LENGTH = 64;
const SEED_CONCURRENCY = 16;

const USAGE = `usage: npm run bench -- [options]
  --name NAME          results file bench/results/NAME.json and .svg (default latest)
  --rounds N           measured rounds per scenario and target (default 3)
  --duration SECONDS   length of a round (default 10)
  --warmup SECONDS     unmeasured warm-up per scenario and target (default 3)
  --connections N      concurrent connections (default 16)
  --groups N           groups seeded through the API (default 1000)
  --workers N          worker identities reading secrets (default 4)
  --pool N             database pool size, service and baseline (default 10, as deployed)
  --log-level LEVEL    the service's LOG_LEVEL (default info, as deployed)
  --token-alg ALG      ES256, RS256 or EdDSA (default ES256)
  --scenarios LIST     read,create (default both)
  --node-args=ARGS     node flags for both servers (default: the heap of the deployed pod,
                       "${DEPLOYED_HEAP_FLAGS}"); --node-args= for V8's defaults here
  --tls                the service listens with TLS (a bench CA's certificate; the driver trusts
                       the CA); default plain HTTP with TLS_DISABLE=true. The baseline stays plain
  --read-delivery D    json (default) or jwe: each worker's policy rule registers a P-256 key and
                       reads are answered with a JWE to it
  --profile            run service and baseline under --cpu-prof and print the breakdowns
  --keep               keep the temporary folder (database, logs)`;

interface BenchOptions {
  readonly name: string;
  readonly rounds: number;
  readonly roundSeconds: number;
  readonly warmupSeconds: number;
  readonly connections: number;
  readonly groups: number;
  readonly workers: number;
  readonly poolMax: number;
  readonly logLevel: string;
  readonly tokenAlgorithm: TokenAlgorithm;
  readonly scenarios: readonly Scenario[];
  readonly nodeArgs: readonly string[];
  readonly profile: boolean;
  readonly keep: boolean;
  readonly tls: boolean;
  readonly readDelivery: 'json' | 'jwe';
}

function parseOptions(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      name: { type: 'string', default: 'latest' },
      rounds: { type: 'string', default: '3' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      connections: { type: 'string', default: '16' },
      groups: { type: 'string', default: '1000' },
      workers: { type: 'string', default: '4' },
      pool: { type: 'string', default: '10' },
      'log-level': { type: 'string', default: 'info' },
      'token-alg': { type: 'string', default: 'ES256' },
      scenarios: { type: 'string', default: 'read,create' },
      'node-args': { type: 'string', default: DEPLOYED_HEAP_FLAGS },
      profile: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      tls: { type: 'boolean', default: false },
      'read-delivery': { type: 'string', default: 'json' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const count = (name: string, text: string, min: number): number => {
    if (!/^\d+$/.test(text) || Number(text) < min) throw new Error(`--${name} must be a whole number >= ${min}`);
    return Number(text);
  };
  // The name becomes a file name in bench/results.
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(values.name)) throw new Error('--name may use only A-Z a-z 0-9 . _ -');
  if (!['ES256', 'RS256', 'EdDSA'].includes(values['token-alg']))
    throw new Error('--token-alg must be ES256, RS256 or EdDSA');
  if (values['read-delivery'] !== 'json' && values['read-delivery'] !== 'jwe')
    throw new Error('--read-delivery must be json or jwe');
  const scenarios = values.scenarios.split(',').map((scenario) => scenario.trim());
  if (scenarios.length === 0 || scenarios.some((scenario) => scenario !== 'read' && scenario !== 'create'))
    throw new Error('--scenarios must list read and/or create');
  return {
    name: values.name,
    rounds: count('rounds', values.rounds, 1),
    roundSeconds: count('duration', values.duration, 1),
    warmupSeconds: count('warmup', values.warmup, 0),
    connections: count('connections', values.connections, 1),
    groups: count('groups', values.groups, 1),
    workers: count('workers', values.workers, 1),
    poolMax: count('pool', values.pool, 1),
    logLevel: values['log-level'],
    tokenAlgorithm: values['token-alg'] as TokenAlgorithm,
    scenarios: [...new Set(scenarios as Scenario[])],
    nodeArgs: values['node-args'].split(/\s+/).filter((arg) => arg !== ''),
    profile: values.profile,
    keep: values.keep,
    tls: values.tls,
    readDelivery: values['read-delivery'],
  };
}

const say = (text: string) => process.stderr.write(`bench: ${text}\n`);

function serviceEnv(
  options: BenchOptions,
  port: number,
  databaseUrl: string,
  keyFile: string,
  issuer: BenchIssuer,
  stateDir: string,
  tlsFiles: BenchTlsFiles | undefined,
): Record<string, string> {
  return {
    // Production refuses plain HTTP unless told: TLS_DISABLE=true is the deployment behind a mesh.
    ...(tlsFiles ? { TLS_CERT_FILE: tlsFiles.certFile, TLS_KEY_FILE: tlsFiles.keyFile } : { TLS_DISABLE: 'true' }),
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_MAX: String(options.poolMax),
    PROVSEC_STATE_DIR: stateDir,
    LOG_LEVEL: options.logLevel,
    KEY_SOURCE: 'file',
    KEY_FILE: keyFile,
    AUTH_ISSUER: issuer.issuer,
    AUTH_AUDIENCE: issuer.audience,
    AUTH_JWKS_FILE: issuer.jwksFile,
    AUTH_POLICY_FILE: issuer.policyFile,
    SECRET_READ_RATE_LIMIT_PER_MINUTE: String(SECRET_READ_RATE_LIMIT_PER_MINUTE),
  };
}

/** Creates the groups through the API, as the management service would; returns id -> secret. */
async function seedGroups(service: ServerProcess, authorization: string, count: number): Promise<Map<string, string>> {
  const secrets = new Map<string, string>();
  let next = 0;
  const createOne = async (index: number) => {
    const id = `bench-group-${String(index).padStart(6, '0')}`;
    const provisionSecret = randomBytes(PROVISION_SECRET_LENGTH / 2).toString('hex');
    const response = await fetch(`${service.baseUrl}/v1/device-groups`, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ id, name: `bench group ${index}`, provisionSecret }),
    });
    if (response.status !== 201) throw new Error(`seeding ${id}: ${response.status} ${await response.text()}`);
    secrets.set(id, provisionSecret);
  };
  await Promise.all(
    Array.from({ length: Math.min(SEED_CONCURRENCY, count) }, async () => {
      while (next < count) await createOne(next++);
    }),
  );
  return secrets;
}

/** One forked load-driver process per run, so the client's CPU and heap are never the server's. */
function runDriver(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const extraCa = process.env.NODE_EXTRA_CA_CERTS;
    const driver = fork(join(APP_ROOT, 'dist', 'bench', 'load-driver.js'), [], {
      // With --tls, the driver trusts the run's CA as this process does.
      env: { PATH: process.env.PATH ?? '', ...(extraCa !== undefined ? { NODE_EXTRA_CA_CERTS: extraCa } : {}) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let answered = false;
    driver.once('message', (message: { ok: true; result: LoadResult } | { ok: false; message: string }) => {
      answered = true;
      if (message.ok) resolve(message.result);
      else reject(new Error(`load driver: ${message.message}`));
    });
    driver.once('exit', (code) => {
      if (!answered) reject(new Error(`load driver exited with code ${code} without a result`));
    });
    driver.send(job);
  });
}

interface Targets {
  readonly service: ServerProcess;
  readonly baseline: ServerProcess;
}

async function main(): Promise<void> {
  let options: BenchOptions;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  if (options.tls) {
    const exitCode = rerunTrustingBenchCa();
    if (exitCode !== undefined) {
      process.exitCode = exitCode;
      return;
    }
  }
  const serviceScript = join(APP_ROOT, 'dist', 'src', 'main.js');
  const baselineScript = join(APP_ROOT, 'dist', 'bench', 'baseline-server.js');
  for (const script of [serviceScript, baselineScript])
    if (!existsSync(script)) throw new Error(`${script} is missing: run through \`npm run bench\`, which builds first`);

  const loadAverageAtStart = loadavg();
  const workDir = mkdtempSync(join(tmpdir(), 'provsec-bench-'));
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    say(`working in ${workDir}`);
    say(
      `service over ${options.tls ? 'TLS' : 'plain HTTP'}, secret reads answered as ${options.readDelivery === 'jwe' ? 'a JWE to the worker' : 'JSON'}; baseline over plain HTTP`,
    );
    const database = await startBenchDatabase(workDir);
    cleanups.push(() => database.stop());
    const keyFile = writeKeyFile(workDir);
    const issuer = await createBenchIssuer(workDir, {
      algorithm: options.tokenAlgorithm,
      workerCount: options.workers,
      recipientKeys: options.readDelivery === 'jwe',
    });
    const tlsFiles = options.tls ? benchTlsFiles() : undefined;
    const tokenTtlSeconds = Math.min(3600, options.roundSeconds + options.warmupSeconds + 300);
    const managementAuthorization = async () =>
      `Bearer ${await issuer.mint(issuer.managementSubject, tokenTtlSeconds)}`;

    const profileDir = join(APP_ROOT, 'bench', 'results', 'profiles', options.name);
    if (options.profile) {
      rmSync(profileDir, { recursive: true, force: true });
      mkdirSync(profileDir, { recursive: true });
    }
    const servicePort = await freePort();
    const service = await startServerProcess({
      name: 'service',
      script: serviceScript,
      env: serviceEnv(options, servicePort, database.url, keyFile, issuer, join(workDir, 'state'), tlsFiles),
      scheme: tlsFiles ? 'https' : 'http',
      nodeArgs: [
        ...options.nodeArgs,
        ...(options.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, 'service')}`] : []),
      ],
      port: servicePort,
      readyPath: '/readyz',
      logFile: join(workDir, 'service.log'),
    });
    cleanups.push(() => service.stop());
    const startupPeakRssBytes = memoryStatus(service.pid).peakResidentBytes;
    const serviceRss = sampleResidentMemory(service.pid);
    serviceRss.enter('seeding');
    say(`service up (pid ${service.pid}), seeding ${options.groups} groups through the API`);
    const secrets = await seedGroups(service, await managementAuthorization(), options.groups);
    const groupIds = [...secrets.keys()];

    // The baseline stores envelopes of exactly this size, under this KEK id, like the service.
    const facts = await storedEnvelopeFacts(database.url);
    const baselinePort = await freePort();
    const baseline = await startServerProcess({
      name: 'baseline',
      script: baselineScript,
      env: {
        DATABASE_URL: database.url,
        PORT: String(baselinePort),
        DATABASE_POOL_MAX: String(options.poolMax),
        BASELINE_SECRET_LENGTH: String(PROVISION_SECRET_LENGTH),
        BASELINE_ENVELOPE_BYTES: String(facts.envelopeBytes),
        BASELINE_KEK_ID: facts.kekId,
        BASELINE_KEK_VERSION: facts.kekVersion === null ? '' : String(facts.kekVersion),
        NODE_ENV: 'production',
      },
      nodeArgs: [
        ...options.nodeArgs,
        ...(options.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, 'baseline')}`] : []),
      ],
      port: baselinePort,
      readyPath: '/healthz',
      logFile: join(workDir, 'baseline.log'),
    });
    cleanups.push(() => baseline.stop());
    const targets: Targets = { service, baseline };
    await checkBothServe(targets, issuer, secrets, tokenTtlSeconds);

    const rounds: RoundRecord[] = [];
    const checkpoint = await databaseCheckpointer(database.url);
    cleanups.push(() => checkpoint.close());
    for (const scenario of options.scenarios) {
      serviceRss.enter(scenario);
      const jobFor = async (target: Target, label: string, durationSeconds: number): Promise<LoadJob> => ({
        scenario,
        baseUrl: targets[target].baseUrl,
        connections: options.connections,
        durationSeconds,
        groupIds,
        // Fresh tokens each run, one per worker identity, reused for the whole run as a worker would.
        readerAuthorizations: await Promise.all(
          issuer.workerSubjects.map(async (subject) => `Bearer ${await issuer.mint(subject, tokenTtlSeconds)}`),
        ),
        createIdPrefix: `bench-${target}-${label}-${randomBytes(3).toString('hex')}`,
        creatorAuthorization: await managementAuthorization(),
        createProvisionSecret: randomBytes(PROVISION_SECRET_LENGTH / 2).toString('hex'),
      });
      if (options.warmupSeconds > 0) {
        for (const target of ['service', 'baseline'] as const) {
          say(`${scenario}: warming up ${target} (${options.warmupSeconds} s)`);
          const warmup = await runDriver(await jobFor(target, 'warmup', options.warmupSeconds));
          if (warmup.non2xxResponses > 0 || warmup.errors > 0)
            throw new Error(
              `${scenario} warm-up of ${target} failed: ${JSON.stringify(warmup.statusCounts)}, ${warmup.errors} errors`,
            );
        }
      }
      for (let round = 1; round <= options.rounds; round++) {
        const order: Target[] = round % 2 === 1 ? ['service', 'baseline'] : ['baseline', 'service'];
        for (const target of order) {
          await checkpoint.run();
          const record = await measureRound(targets[target], await jobFor(target, `r${round}`, options.roundSeconds), {
            scenario,
            target,
            round,
          });
          rounds.push(record);
          say(
            `${scenario} round ${round} ${target.padEnd(8)} ${record.requestsPerSecond.toFixed(0).padStart(6)} req/s  p50 ${record.latencyMs.p50.toFixed(2)} ms  p99 ${record.latencyMs.p99.toFixed(2)} ms  ` +
              `server ${record.serverCpuMsPerRequest.toFixed(3)} ms CPU/req (${record.serverCpuCores.toFixed(2)} cores)  machine ${(100 * record.machineBusyFraction).toFixed(0)}% busy` +
              (record.non2xxResponses + record.errors > 0
                ? `  NON-2XX ${JSON.stringify(record.statusCounts)} errors ${record.errors}`
                : ''),
          );
        }
      }
    }

    const serviceMemory = memoryStatus(service.pid);
    const servicePeakRssByPhase = { 'start-up': startupPeakRssBytes, ...serviceRss.stop() };
    const baselineMemory = memoryStatus(baseline.pid);
    // Stopped now (stop() is idempotent, so the cleanups may call it again): the profile is
    // written on exit, and the log is complete.
    await baseline.stop();
    const serviceExit = await service.stop();
    if (serviceExit !== 0) say(`warning: the service exited with code ${serviceExit} on SIGTERM`);

    const profiles: Partial<Record<Target, ProfileBreakdown>> = {};
    if (options.profile) {
      for (const target of ['service', 'baseline'] as const) {
        const dir = join(profileDir, target);
        const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
        if (file !== undefined)
          profiles[target] = analyzeProfile(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile);
      }
    }

    const serviceLog = readFileSync(service.logFile, 'utf8');
    const requestsServedByService =
      options.groups +
      rounds.filter((round) => round.target === 'service').reduce((sum, round) => sum + round.successfulResponses, 0);
    const results: BenchResults = {
      name: options.name,
      createdAt: new Date().toISOString(),
      gitCommit: gitCommit(),
      machine: describeMachine(),
      loadAverage: { atStart: loadAverageAtStart, atEnd: loadavg() },
      configuration: configurationOf(options, facts.envelopeBytes),
      scenarios: Object.fromEntries(
        options.scenarios.map((scenario) => [scenario, summarizeScenario(rounds, scenario)]),
      ),
      memory: {
        servicePeakRssBytes: serviceMemory.peakResidentBytes,
        serviceRssAtEndBytes: serviceMemory.residentBytes,
        servicePeakRssByPhaseBytes: servicePeakRssByPhase,
        baselinePeakRssBytes: baselineMemory.peakResidentBytes,
        targetPeakRssBytes: TARGET_PEAK_RSS_BYTES,
        met: serviceMemory.peakResidentBytes <= TARGET_PEAK_RSS_BYTES,
      },
      logging: {
        serviceLogBytes: Buffer.byteLength(serviceLog),
        serviceLogLines: serviceLog.split('\n').filter((line) => line !== '').length,
        // Warm-up requests are logged too, so this slightly overstates bytes per request.
        requestsServedByService,
        bytesPerRequest: Buffer.byteLength(serviceLog) / Math.max(1, requestsServedByService),
      },
      rounds,
      ...(options.profile ? { profiles } : {}),
    };

    const resultsDir = join(APP_ROOT, 'bench', 'results');
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(join(resultsDir, `${options.name}.json`), `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(join(resultsDir, `${options.name}.svg`), renderChart(results));
    process.stdout.write(
      `\n${formatSummary(results)}\n\nwrote bench/results/${options.name}.json and bench/results/${options.name}.svg\n`,
    );
    for (const [target, breakdown] of Object.entries(profiles)) {
      process.stdout.write(
        `\n${target} CPU profile (bench/results/profiles/${options.name}/${target}/):\n${formatBreakdown(breakdown)}\n`,
      );
    }
  } finally {
    for (const cleanup of cleanups.reverse())
      await cleanup().catch((error: unknown) => say(`cleanup: ${(error as Error).message}`));
    if (options.keep) say(`kept ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  }
}

async function measureRound(
  server: ServerProcess,
  job: LoadJob,
  where: { scenario: Scenario; target: Target; round: number },
): Promise<RoundRecord> {
  const cpuBeforeMs = processCpuMs(server.pid);
  const machineBefore = machineCpuSample();
  const started = process.hrtime.bigint();
  const load = await runDriver(job);
  const elapsedSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const serverCpuMs = processCpuMs(server.pid) - cpuBeforeMs;
  return {
    ...where,
    durationSeconds: load.durationSeconds,
    successfulResponses: load.successfulResponses,
    requestsPerSecond: load.requestsPerSecond,
    latencyMs: load.latencyMs,
    non2xxResponses: load.non2xxResponses,
    statusCounts: load.statusCounts,
    errors: load.errors,
    timeouts: load.timeouts,
    serverCpuMsPerRequest: serverCpuMs / Math.max(1, load.successfulResponses),
    serverCpuCores: serverCpuMs / 1000 / elapsedSeconds,
    driverCpuCores: load.driverCpuCores,
    machineBusyFraction: machineBusyFraction(machineBefore, machineCpuSample()),
  };
}

/** Before measuring anything: a worker gets the right secret from the service, and the baseline answers. */
async function checkBothServe(
  targets: Targets,
  issuer: BenchIssuer,
  secrets: ReadonlyMap<string, string>,
  ttlSeconds: number,
): Promise<void> {
  const [groupId, expected] = [...secrets.entries()][0] as [string, string];
  const authorization = `Bearer ${await issuer.mint(issuer.workerSubjects[0] as string, ttlSeconds)}`;
  for (const target of ['service', 'baseline'] as const) {
    const response = await fetch(`${targets[target].baseUrl}/v1/device-groups/${groupId}/provision-secret`, {
      headers: { authorization },
    });
    if (response.status !== 200)
      throw new Error(`${target} refused a secret read: ${response.status} ${await response.text()}`);
    // A JWE answer (--read-delivery jwe) is opened with the worker's private key, as the worker would.
    const recipient = target === 'service' ? issuer.recipientPrivateKeys[0] : undefined;
    const body = (
      recipient
        ? JSON.parse(new TextDecoder().decode((await compactDecrypt(await response.text(), recipient)).plaintext))
        : await response.json()
    ) as { provisionSecret?: string };
    if (target === 'service' && body.provisionSecret !== expected)
      throw new Error('the service returned a different secret than was stored');
    if (body.provisionSecret?.length !== expected.length)
      throw new Error(`${target} returned a secret of the wrong length`);
  }
}

async function storedEnvelopeFacts(
  databaseUrl: string,
): Promise<{ envelopeBytes: number; kekId: string; kekVersion: number | null }> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const result = await client.query<{ envelope_bytes: number; kek_id: string; kek_version: number | null }>(
      'SELECT octet_length(provision_secret_envelope) AS envelope_bytes, kek_id, kek_version FROM ota_groups WHERE provision_secret_envelope IS NOT NULL LIMIT 1',
    );
    const row = result.rows[0];
    if (!row) throw new Error('no stored envelope after seeding');
    return { envelopeBytes: row.envelope_bytes, kekId: row.kek_id, kekVersion: row.kek_version };
  } finally {
    await client.end();
  }
}

/**
 * A CHECKPOINT before each round, so no round inherits the previous one's dirty pages and pays
 * for their write-out: rounds start from the same database state whichever server ran before.
 */
async function databaseCheckpointer(databaseUrl: string): Promise<{ run(): Promise<void>; close(): Promise<void> }> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  return {
    run: async () => {
      await client.query('CHECKPOINT');
    },
    close: () => client.end(),
  };
}

function configurationOf(options: BenchOptions, envelopeBytes: number): BenchConfiguration {
  return {
    rounds: options.rounds,
    roundSeconds: options.roundSeconds,
    warmupSeconds: options.warmupSeconds,
    connections: options.connections,
    seededGroups: options.groups,
    workerIdentities: options.workers,
    tokenAlgorithm: options.tokenAlgorithm,
    databasePoolMax: options.poolMax,
    serviceLogLevel: options.logLevel,
    nodeArgs: options.nodeArgs,
    secretReadRateLimitPerMinute: SECRET_READ_RATE_LIMIT_PER_MINUTE,
    provisionSecretBytes: PROVISION_SECRET_LENGTH,
    envelopeBytes,
    nodeEnv: 'production',
    scenarios: options.scenarios,
    serviceTransport: options.tls ? 'tls' : 'http',
    readDelivery: options.readDelivery,
  };
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`bench: failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
