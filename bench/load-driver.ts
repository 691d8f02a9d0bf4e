/**
 * One load run with autocannon, in a process of its own (forked by bench/service.ts), so the
 * client's CPU is never the server's. It gets a LoadJob over IPC and answers with a LoadResult.
 *
 * Every request is built fresh (autocannon `setupRequest`): secret reads walk the seeded group ids
 * and rotate the worker identities' tokens; creations send a new group id each time. Latencies
 * are kept per response at sub-millisecond resolution (autocannon's own histogram is in whole ms).
 */
import { inspect } from 'node:util';
import autocannon from 'autocannon';
import { summarizeLatencies, type LatencySummaryMs } from './latency';

export type Scenario = 'read' | 'create';

export interface LoadJob {
  readonly scenario: Scenario;
  readonly baseUrl: string;
  readonly connections: number;
  readonly durationSeconds: number;
  /** read: the group ids to spread the reads over, and one `Bearer ...` value per identity. */
  readonly groupIds: readonly string[];
  readonly readerAuthorizations: readonly string[];
  /** create: ids are `${createIdPrefix}-${n}`, unique within the whole benchmark run. */
  readonly createIdPrefix: string;
  readonly creatorAuthorization: string;
  readonly createProvisionSecret: string;
}

export interface LoadResult {
  readonly durationSeconds: number;
  /** Only 2xx responses count as served. */
  readonly successfulResponses: number;
  readonly requestsPerSecond: number;
  readonly latencyMs: LatencySummaryMs;
  readonly non2xxResponses: number;
  readonly statusCounts: Readonly<Record<string, number>>;
  readonly errors: number;
  readonly timeouts: number;
  /** The driver's own CPU use while it ran, as a share of one core. */
  readonly driverCpuCores: number;
}

function requestFor(job: LoadJob): autocannon.Request {
  let sequence = 0;
  if (job.scenario === 'read') {
    const ids = job.groupIds;
    const authorizations = job.readerAuthorizations;
    return {
      method: 'GET',
      setupRequest: (request) => {
        const n = sequence++;
        // A stride coprime to the id count visits every group, never the same few in a row.
        const id = ids[(n * 7919) % ids.length] as string;
        return {
          ...request,
          path: `/v1/device-groups/${encodeURIComponent(id)}/provision-secret`,
          headers: { authorization: authorizations[n % authorizations.length] as string },
        };
      },
    };
  }
  return {
    method: 'POST',
    setupRequest: (request) => {
      const id = `${job.createIdPrefix}-${sequence++}`;
      return {
        ...request,
        path: '/v1/device-groups',
        headers: { authorization: job.creatorAuthorization, 'content-type': 'application/json' },
        body: JSON.stringify({ id, name: 'bench group', provisionSecret: job.createProvisionSecret }),
      };
    },
  };
}

export async function runLoad(job: LoadJob): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  const statusCounts: Record<string, number> = {};
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: job.baseUrl,
        connections: job.connections,
        duration: job.durationSeconds,
        requests: [requestFor(job)],
        timeout: 10,
      },
      (error: unknown, finished: autocannon.Result) =>
        error ? reject(error instanceof Error ? error : new Error(inspect(error))) : resolve(finished),
    );
    instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
      statusCounts[statusCode] = (statusCounts[statusCode] ?? 0) + 1;
      if (statusCode >= 200 && statusCode < 300) latenciesMs.push(responseTimeMs);
    });
  });
  const elapsedSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  const durationSeconds = result.duration;
  return {
    durationSeconds,
    successfulResponses: latenciesMs.length,
    requestsPerSecond: latenciesMs.length / durationSeconds,
    latencyMs: summarizeLatencies(latenciesMs),
    non2xxResponses: result.non2xx,
    statusCounts,
    errors: result.errors,
    timeouts: result.timeouts,
    driverCpuCores: (cpu.user + cpu.system) / 1e6 / elapsedSeconds,
  };
}

if (require.main === module) {
  process.once('message', (job: LoadJob) => {
    runLoad(job).then(
      (result) => process.send?.({ ok: true, result }, () => process.disconnect()),
      (error: unknown) =>
        process.send?.({ ok: false, message: error instanceof Error ? error.message : String(error) }, () =>
          process.disconnect(),
        ),
    );
  });
}
