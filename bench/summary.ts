/**
 * The shape of bench/results/<name>.json and how rounds become figures: per scenario and target,
 * the median over rounds of throughput and of each round's p50 and p99 (rounds alternate between
 * service and baseline, so drift of the machine falls on both), and the service/baseline ratio.
 */
import type { LoadResult, Scenario } from './load-driver';
import type { MachineDescription } from './proc-stats';
import type { ProfileBreakdown } from './profile-summary';

export type Target = 'service' | 'baseline';

/** One measured round: what the load driver saw, and what the bench measured around it. */
export interface RoundRecord extends LoadResult {
  readonly scenario: Scenario;
  readonly target: Target;
  readonly round: number;
  /** CPU the server process used per served request. */
  readonly serverCpuMsPerRequest: number;
  /** CPU the server process used, in cores (1 = one core fully busy). */
  readonly serverCpuCores: number;
  /** All cores of the machine: share busy during the round (server, Postgres and driver together). */
  readonly machineBusyFraction: number;
}

export interface TargetSummary {
  readonly rounds: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly serverCpuMsPerRequest: number;
}

export interface ScenarioSummary {
  readonly service: TargetSummary;
  readonly baseline: TargetSummary;
  /** service req/s over baseline req/s (medians). */
  readonly throughputRatio: number;
  /**
   * Server CPU per request, service over baseline (medians). Unlike throughput it hardly moves
   * with what else the machine runs; it is what the throughput ratio tends to when the server
   * process, not Postgres or the load driver, is what runs out of CPU.
   */
  readonly cpuPerRequestRatio: number;
  readonly targetRatio: number;
  readonly met: boolean;
}

export interface BenchConfiguration {
  readonly rounds: number;
  readonly roundSeconds: number;
  readonly warmupSeconds: number;
  readonly connections: number;
  readonly seededGroups: number;
  readonly workerIdentities: number;
  readonly tokenAlgorithm: string;
  readonly databasePoolMax: number;
  readonly serviceLogLevel: string;
  /** Node flags of both servers (by default the heap sizing of the deployed pod). */
  readonly nodeArgs: readonly string[];
  readonly secretReadRateLimitPerMinute: number;
  readonly provisionSecretBytes: number;
  readonly envelopeBytes: number;
  readonly nodeEnv: string;
  readonly scenarios: readonly Scenario[];
  /** The service's listener: plain HTTP (TLS_DISABLE=true, the ratio's default) or TLS. The baseline is always plain. */
  readonly serviceTransport: 'http' | 'tls';
  /** How the service answers secret reads: JSON, or a JWE to each worker's registered key. */
  readonly readDelivery: 'json' | 'jwe';
}

export interface BenchResults {
  readonly name: string;
  readonly createdAt: string;
  readonly gitCommit: string;
  readonly machine: MachineDescription;
  /**
   * os.loadavg() (1, 5 and 15 minutes) before the first server starts and after the last round:
   * what else ran on the machine. On two cores the run itself adds about 2 by the end.
   */
  readonly loadAverage?: { readonly atStart: readonly number[]; readonly atEnd: readonly number[] };
  readonly configuration: BenchConfiguration;
  readonly scenarios: Partial<Record<Scenario, ScenarioSummary>>;
  readonly memory: {
    /** VmHWM of the service process at the end of the run. */
    readonly servicePeakRssBytes: number;
    readonly serviceRssAtEndBytes: number;
    /** Start-up: VmHWM once ready. Then the largest VmRSS sampled (every 100 ms) while seeding and in each scenario. */
    readonly servicePeakRssByPhaseBytes: Readonly<Record<string, number>>;
    readonly baselinePeakRssBytes: number;
    readonly targetPeakRssBytes: number;
    readonly met: boolean;
  };
  readonly logging: {
    readonly serviceLogBytes: number;
    readonly serviceLogLines: number;
    readonly requestsServedByService: number;
    readonly bytesPerRequest: number;
  };
  readonly rounds: readonly RoundRecord[];
  /** With --profile: where each server's CPU samples went. */
  readonly profiles?: Partial<Record<Target, ProfileBreakdown>>;
}

export const TARGET_THROUGHPUT_RATIO = 0.8;
/** 150 MiB: how a Kubernetes memory limit of 150Mi counts. */
export const TARGET_PEAK_RSS_BYTES = 150 * 1024 * 1024;

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function summarizeTarget(rounds: readonly RoundRecord[]): TargetSummary {
  return {
    rounds: rounds.length,
    requestsPerSecond: median(rounds.map((round) => round.requestsPerSecond)),
    p50Ms: median(rounds.map((round) => round.latencyMs.p50)),
    p99Ms: median(rounds.map((round) => round.latencyMs.p99)),
    serverCpuMsPerRequest: median(rounds.map((round) => round.serverCpuMsPerRequest)),
  };
}

export function summarizeScenario(rounds: readonly RoundRecord[], scenario: Scenario): ScenarioSummary {
  const service = summarizeTarget(rounds.filter((round) => round.scenario === scenario && round.target === 'service'));
  const baseline = summarizeTarget(
    rounds.filter((round) => round.scenario === scenario && round.target === 'baseline'),
  );
  const throughputRatio = service.requestsPerSecond / baseline.requestsPerSecond;
  return {
    service,
    baseline,
    throughputRatio,
    cpuPerRequestRatio: service.serverCpuMsPerRequest / baseline.serverCpuMsPerRequest,
    targetRatio: TARGET_THROUGHPUT_RATIO,
    met: throughputRatio >= TARGET_THROUGHPUT_RATIO,
  };
}

export const SCENARIO_TITLES: Record<Scenario, string> = {
  read: 'GET provision-secret',
  create: 'POST device-groups',
};

const MIB = 1024 * 1024;

/** The figures as a few lines of plain text for the terminal. */
export function formatSummary(results: BenchResults): string {
  const lines: string[] = [];
  const pad = (text: string, width: number) => text.padStart(width);
  if (results.loadAverage)
    lines.push(
      `load average (1 min) ${results.loadAverage.atStart[0]?.toFixed(2)} at the start, ${results.loadAverage.atEnd[0]?.toFixed(2)} at the end\n`,
    );
  lines.push(
    `${'scenario'.padEnd(22)}${pad('target', 10)}${pad('req/s', 10)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('cpu ms/req', 12)}`,
  );
  for (const [scenario, summary] of Object.entries(results.scenarios) as Array<[Scenario, ScenarioSummary]>) {
    for (const target of ['service', 'baseline'] as const) {
      const figures = summary[target];
      lines.push(
        `${SCENARIO_TITLES[scenario].padEnd(22)}${pad(target, 10)}${pad(figures.requestsPerSecond.toFixed(0), 10)}${pad(figures.p50Ms.toFixed(2), 9)}${pad(figures.p99Ms.toFixed(2), 9)}${pad(figures.serverCpuMsPerRequest.toFixed(3), 12)}`,
      );
    }
    lines.push(
      `${''.padEnd(22)}throughput service/baseline ${summary.throughputRatio.toFixed(2)} (target >= ${summary.targetRatio}: ${summary.met ? 'met' : 'MISSED'}); server CPU per request ${summary.cpuPerRequestRatio.toFixed(1)} x the baseline's`,
    );
  }
  const memory = results.memory;
  lines.push(
    `service peak RSS (VmHWM) ${(memory.servicePeakRssBytes / MIB).toFixed(1)} MiB (target <= ${memory.targetPeakRssBytes / MIB} MiB: ${memory.met ? 'met' : 'MISSED'}); baseline ${(memory.baselinePeakRssBytes / MIB).toFixed(1)} MiB`,
  );
  const phases = Object.entries(memory.servicePeakRssByPhaseBytes).map(
    ([phase, bytes]) => `${phase} ${(bytes / MIB).toFixed(1)}`,
  );
  lines.push(`service peak RSS by phase (MiB): ${phases.join(', ')}`);
  lines.push(
    `service log: ${results.logging.serviceLogLines} lines, ${results.logging.bytesPerRequest.toFixed(0)} bytes per request at LOG_LEVEL=${results.configuration.serviceLogLevel}`,
  );
  return lines.join('\n');
}
