/**
 * `npm run bench:http`: the CPU the service's HTTP stack costs per request, without a database,
 * a network or a load driver: every layer of createApp (helmet, request id, access log, metrics,
 * body parsing, router), the real token verifier (with its cache), policy, rate limiter, validation,
 * service and envelope crypto, driven in process over an in-memory socket. The store and audit log
 * are in-memory stand-ins, so what it measures is everything the service adds on top of the pg
 * client and Postgres. A benchmark, not a test: it prints CPU microseconds per request.
 *
 * Why in process: on a shared machine a load test's CPU per request moves by ±20 % with what
 * else runs; this loop's CPU time per request is steady to a few percent, so a change of 10 µs in
 * one layer can be seen. `--cpu-prof` beside it (node --cpu-prof dist/bench/http-stack.js) and
 * dist/bench/profile-summary.js split it by layer.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { IncomingMessage, ServerResponse } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { AccessPolicy, createTokenVerifier } from '../src/auth';
import { withVerificationCache } from '../src/auth/verification-cache';
import { importKek, Keyring, sealSecret } from '../src/crypto';
import { createApp } from '../src/http/app';
import { authenticate } from '../src/http/auth-middleware';
import { deviceGroupRoutes } from '../src/http/device-group-routes';
import { openApiRoutes } from '../src/http/openapi';
import { serviceErrorMapper } from '../src/http/error-mappers';
import { createSecretReadRateLimiter } from '../src/http/rate-limit';
import { createLogger } from '../src/log/logger';
import { createServiceMetrics } from '../src/metrics/service-metrics';
import { createDeviceGroupService } from '../src/service/device-group-service';
import type { DeviceGroupStore, StoredDeviceGroup } from '../src/store/device-group-store';
import { createBenchIssuer } from './stack';

/** A socket that accepts every write and counts the bytes (what the kernel would have been sent). */
class SinkSocket extends Duplex {
  bytesWritten = 0;
  /** The first chunks written, for --show. */
  readonly firstChunks: string[] = [];
  remoteAddress = '127.0.0.1';
  override _read(): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.keep(chunk);
    callback();
  }
  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    for (const { chunk } of chunks) this.keep(chunk);
    callback();
  }
  private keep(chunk: Buffer): void {
    this.bytesWritten += chunk.length;
    if (this.firstChunks.length < 4) this.firstChunks.push(chunk.toString());
  }
  setTimeout(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
}

interface RequestSpec {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** One request through `handler` as node:http would deliver it; resolves with the status once closed. */
function dispatch(handler: Handler, spec: RequestSpec, socket: SinkSocket): Promise<number> {
  const req = new IncomingMessage(socket as never);
  req.method = spec.method;
  req.url = spec.url;
  req.httpVersion = '1.1';
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  const headers: Record<string, string> = { host: '127.0.0.1:8080', ...spec.headers };
  if (spec.body !== undefined) headers['content-length'] = String(Buffer.byteLength(spec.body));
  req.headers = headers;
  req.rawHeaders = Object.entries(headers).flat();
  if (spec.body !== undefined) req.push(spec.body);
  req.push(null);
  req.complete = true;
  const res = new ServerResponse(req);
  res.assignSocket(socket as never);
  return new Promise((resolve) => {
    res.once('finish', () => {
      res.detachSocket(socket as never);
      // node:http emits 'close' on the response after 'finish' (the access log and metrics listen for either).
      process.nextTick(() => {
        res.emit('close');
        resolve(res.statusCode);
      });
    });
    handler(req, res);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '20000' },
      rounds: { type: 'string', default: '5' },
      concurrency: { type: 'string', default: '16' },
      scenarios: { type: 'string', default: 'read,create' },
      'log-level': { type: 'string', default: 'info' },
      // Print the first response and access-log line of each scenario (to compare them across changes).
      show: { type: 'boolean', default: false },
    },
  });
  const requestsPerRound = Number(values.requests);
  const rounds = Number(values.rounds);
  const concurrency = Number(values.concurrency);
  const dir = mkdtempSync(join(tmpdir(), 'provsec-http-bench-'));
  try {
    const issuer = await createBenchIssuer(dir, { algorithm: 'ES256', workerCount: 4 });
    const keyring = Keyring.single(importKek(randomBytes(32), 1));
    const registry = new Registry();
    const metrics = createServiceMetrics(registry);

    // In-memory stand-ins for the database: what the service gets back from pg, without pg.
    const groups = new Map<string, StoredDeviceGroup>();
    const now = new Date();
    for (let index = 0; index < 1000; index++) {
      const id = `bench-${String(index).padStart(6, '0')}`;
      const sealed = sealSecret(Buffer.from('s'.repeat(64)), { groupId: id, secretVersion: 1 }, keyring);
      groups.set(id, {
        id,
        name: null,
        secretVersion: 1,
        kekId: sealed.kekId,
        kekVersion: sealed.kekVersion,
        envelopeIsCurrent: true,
        envelope: Buffer.from(sealed.envelope),
        createdAt: now,
        updatedAt: now,
      });
    }
    const audit = { record: () => Promise.resolve() };
    // Denials are audited by the same no-op: the bench measures the HTTP stack, not the audit log.
    const denials = audit;
    const store = {
      findForSecretRead: (groupId: string) => Promise.resolve(groups.get(groupId)),
      insert: (group: { id: string; name: string | null; sealed: { kekId: string } }) =>
        Promise.resolve({
          id: group.id,
          name: group.name,
          secretVersion: 1,
          kekId: group.sealed.kekId,
          createdAt: new Date(),
          updatedAt: new Date(),
        }),
    } as unknown as DeviceGroupStore;
    const keys = { currentKeyring: () => keyring, keyringFor: () => Promise.resolve(keyring) };

    const verifier = withVerificationCache(
      createTokenVerifier({
        issuers: [{ issuer: issuer.issuer, audience: issuer.audience, jwks: { kind: 'file', path: issuer.jwksFile } }],
        maxTokenLifetimeSeconds: 3600,
      }),
    );
    const auth = { verifier, policy: await AccessPolicy.load(issuer.policyFile), denials, metrics };
    const service = createDeviceGroupService({ store, audit, keys });
    const secretReadLimiter = createSecretReadRateLimiter({ perMinute: 1_000_000 }, { denials, metrics });
    // pino writes to a sink stream: the line is built and written as in production, the bytes dropped.
    const logSink = new SinkSocket();
    const logger = createLogger({ level: values['log-level'] }, logSink);
    const app = createApp({
      logger,
      registry,
      readinessChecks: [],
      isDraining: () => false,
      authenticateApi: authenticate(auth),
      // In the order runtime.ts mounts them (the OpenAPI router is passed through on every /v1 request).
      routers: [openApiRoutes(), deviceGroupRoutes({ auth, service, metrics, secretReadLimiter })],
      errorMappers: [serviceErrorMapper],
    }) as unknown as Handler;

    const workerTokens = await Promise.all(issuer.workerSubjects.map((subject) => issuer.mint(subject, 3600)));
    const managementToken = await issuer.mint(issuer.managementSubject, 3600);
    const groupIds = [...groups.keys()];
    let created = 0;
    const scenarios: Record<string, (index: number) => RequestSpec> = {
      read: (index) => ({
        method: 'GET',
        url: `/v1/device-groups/${groupIds[index % groupIds.length]}/provision-secret`,
        headers: { authorization: `Bearer ${workerTokens[index % workerTokens.length]}`, accept: '*/*' },
      }),
      create: () => ({
        method: 'POST',
        url: '/v1/device-groups',
        headers: { authorization: `Bearer ${managementToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ id: `bench-new-${created++}`, provisionSecret: 'p'.repeat(64) }),
      }),
    };

    console.log(
      `provsec HTTP stack, in process (no database): ${rounds} rounds of ${requestsPerRound} requests, ${concurrency} in flight; Node ${process.version}, ${cpus()[0]?.model ?? '?'}, load average ${loadavg()[0]?.toFixed(2)}`,
    );
    for (const name of values.scenarios.split(',')) {
      const makeRequest = scenarios[name];
      if (!makeRequest) throw new Error(`unknown scenario ${name}`);
      // One socket per lane, as one keep-alive connection per client (a socket serves one response at a time).
      const sockets = Array.from({ length: concurrency }, () => new SinkSocket());
      const perRound: number[] = [];
      // The first round warms the JIT and the verification cache; it is printed, not counted.
      for (let round = 0; round <= rounds; round++) {
        const before = process.cpuUsage();
        let next = 0;
        const statuses = new Map<number, number>();
        const lane = async (socket: SinkSocket): Promise<void> => {
          while (next < requestsPerRound) {
            const status = await dispatch(app, makeRequest(next++), socket);
            statuses.set(status, (statuses.get(status) ?? 0) + 1);
          }
        };
        await Promise.all(sockets.map(lane));
        const used = process.cpuUsage(before);
        const microsPerRequest = (used.user + used.system) / requestsPerRound;
        if (round > 0) perRound.push(microsPerRequest);
        const unexpected = [...statuses].filter(([status]) => status >= 300);
        if (unexpected.length > 0) throw new Error(`${name}: unexpected statuses ${JSON.stringify(unexpected)}`);
        console.log(`  ${name} round ${round}${round === 0 ? ' (warm-up)' : ''}: ${microsPerRequest.toFixed(1)} µs`);
      }
      perRound.sort((a, b) => a - b);
      console.log(
        `${name}: min ${perRound[0]?.toFixed(1)} µs, median ${perRound[Math.floor(perRound.length / 2)]?.toFixed(1)} µs CPU per request; response ${Math.round(sockets.reduce((sum, socket) => sum + socket.bytesWritten, 0) / ((rounds + 1) * requestsPerRound))} bytes, log ${Math.round(logSink.bytesWritten / ((rounds + 1) * requestsPerRound))} bytes per request`,
      );
      if (values.show) {
        console.log(`first response:\n${sockets[0]?.firstChunks.join('')}`);
        console.log(`first log line:\n${logSink.firstChunks.join('')}`);
      }
      logSink.bytesWritten = 0;
      logSink.firstChunks.length = 0;
    }
    console.log(`load average now ${loadavg()[0]?.toFixed(2)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`bench failed: ${(error as Error).stack ?? String(error)}`);
    process.exit(1);
  },
);
