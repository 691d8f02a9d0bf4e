/**
 * fast-check arbitraries for malformed requests to the provsec API. Each generated request carries
 * at least one defect that must make the service refuse it, or is a read that changes nothing:
 * a request that could mutate a row (a valid token with write permission on POST, PUT or DELETE)
 * is only ever generated with a broken id, body, media type or encoding. That is what lets the fuzz
 * test demand "no row changed" whatever the seed.
 */
import fc from 'fast-check';
import {
  acceptableCreateBody,
  acceptableRotateBody,
  badIdSegment,
  brokenJsonText,
  defectiveJsonBody,
  printableAscii,
  QUERY_KEYS,
  queryValue,
  refusedAuthorization,
} from './malformed-parts';

/** What the service must answer: any 4xx, exactly 403, or anything but a 5xx (harmless reads). */
export type Expectation = '4xx' | '403' | 'not-5xx';

export interface MalformedRequest {
  /** The kind of defect, for statistics and failure reports. */
  readonly defect: string;
  readonly method: string;
  /** Sent byte for byte: printable ASCII, percent-encoded where needed. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly expect: Expectation;
}

export interface FuzzTokens {
  /** device-groups:read and :write. */
  readonly management: string;
  /** provision-secret:read and device-groups:read. */
  readonly worker: string;
  readonly auditor: string;
  readonly keyAdmin: string;
  /** provision-secret:read on fleet-a.* only. */
  readonly fleetA: string;
  /** Valid signature, subject in no policy rule. */
  readonly nobody: string;
  /** Invalid in some way each: wrong key, alg none, HMAC confusion, expired, wrong audience... */
  readonly refused: readonly string[];
}

export interface FuzzContext {
  readonly tokens: FuzzTokens;
  /** Groups that exist (their rows must survive unchanged). */
  readonly existingIds: readonly string[];
}

const existingId = (context: FuzzContext) => fc.constantFrom(...context.existingIds);

/** Every route of the API, with real ids: for requests whose defect lies elsewhere (e.g. the token). */
const anyApiPath = (context: FuzzContext) =>
  fc.oneof(
    fc.constant('/v1/device-groups'),
    existingId(context).map((id) => `/v1/device-groups/${id}`),
    existingId(context).map((id) => `/v1/device-groups/${id}/provision-secret`),
    fc.constantFrom(
      '/v1/audit-events',
      '/v1/keys',
      '/v1/device-groups?limit=5',
      '/v1/device-groups/',
      '/V1/DEVICE-GROUPS',
      '/v1//device-groups',
    ),
  );

const JSON_TYPE = fc.constantFrom('application/json', 'application/json; charset=utf-8');

/** Bad or missing token on any route: 401 (or 400/405/413/415 when the body or method fails first). */
const unauthenticated = (context: FuzzContext) =>
  fc
    .record({
      method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
      path: anyApiPath(context),
      authorization: refusedAuthorization(context.tokens.management, context.tokens.refused),
      body: fc.option(fc.oneof(acceptableCreateBody, acceptableRotateBody, defectiveJsonBody), { nil: undefined }),
    })
    .map(({ method, path, authorization, body }): MalformedRequest => ({
      defect: 'token',
      method,
      path,
      headers: {
        ...(authorization === undefined ? {} : { authorization }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body }),
      expect: '4xx',
    }));

/** A write token, the right route, a body the schema must refuse. */
const defectiveBody = (context: FuzzContext) =>
  fc
    .record({
      target: fc.oneof(
        fc.constant('/v1/device-groups'),
        existingId(context).map((id) => `/v1/device-groups/${id}/provision-secret`),
      ),
      body: fc.oneof(defectiveJsonBody, brokenJsonText),
      contentType: JSON_TYPE,
    })
    .map(({ target, body, contentType }): MalformedRequest => ({
      defect: 'body',
      method: target.endsWith('provision-secret') ? 'PUT' : 'POST',
      path: target,
      headers: { authorization: `Bearer ${context.tokens.management}`, 'content-type': contentType },
      body,
      expect: '4xx',
    }));

/** A valid body under a media type, charset or content coding the service must not accept. */
const wrongContentType = (context: FuzzContext) =>
  fc
    .record({
      target: fc.oneof(
        fc.constant('/v1/device-groups'),
        existingId(context).map((id) => `/v1/device-groups/${id}/provision-secret`),
      ),
      headers: fc.oneof(
        fc
          .constantFrom(
            'text/plain',
            'text/json',
            'application/xml',
            'application/x-www-form-urlencoded',
            'multipart/form-data; boundary=x',
            'application/octet-stream',
            'application/json-patch+json',
            'application/merge-patch+json',
            'application/jsonx',
            'json',
            '*/*',
            'application/*',
            'application',
            'application/json; charset=latin1',
            'application/json; charset=utf8',
            'application/json; charset=ascii',
            'application/json; charset=utf-16',
            'application/json; charset=utf-16be',
            'application/json; charset=utf-32',
            'application/json; charset=x-unknown',
          )
          .map((type) => ({ 'content-type': type })),
        fc.constant({}),
        fc
          .constantFrom(
            'gzip',
            'deflate',
            'br',
            'compress',
            'x-gzip',
            'zstd',
            'gzip, gzip',
            'identity, gzip',
            'unknown',
          )
          .map((encoding) => ({ 'content-type': 'application/json', 'content-encoding': encoding })),
        fc.constant({ 'transfer-encoding': 'chunked', 'content-type': 'text/plain' }),
      ),
    })
    .chain(({ target, headers }) =>
      (target.endsWith('provision-secret') ? acceptableRotateBody : acceptableCreateBody).map(
        (body): MalformedRequest => ({
          defect: 'media-type',
          method: target.endsWith('provision-secret') ? 'PUT' : 'POST',
          path: target,
          headers: { authorization: `Bearer ${context.tokens.management}`, ...headers },
          body,
          expect: '4xx',
        }),
      ),
    );

/** A group id in the path that no row can have: 400 on every method. */
const defectiveId = (context: FuzzContext) =>
  fc
    .record({
      segment: badIdSegment,
      method: fc.constantFrom('GET', 'PUT', 'DELETE'),
      secretRoute: fc.boolean(),
      token: fc.constantFrom(context.tokens.management, context.tokens.worker),
      body: acceptableRotateBody,
    })
    .map(({ segment, method, secretRoute, token, body }): MalformedRequest => {
      const withBody = method === 'PUT';
      return {
        defect: 'id',
        method,
        path: `/v1/device-groups/${segment}${secretRoute || method === 'PUT' ? '/provision-secret' : ''}`,
        headers: { authorization: `Bearer ${token}`, ...(withBody ? { 'content-type': 'application/json' } : {}) },
        ...(withBody ? { body } : {}),
        expect: '4xx',
      };
    });

/** Odd query strings on the list routes: reads only, so anything but a 5xx is acceptable. */
const defectiveQuery = (context: FuzzContext) =>
  fc
    .record({
      route: fc.constantFrom('/v1/device-groups', '/v1/audit-events'),
      pairs: fc.array(
        fc.tuple(
          fc.oneof(fc.constantFrom(...QUERY_KEYS), fc.string({ maxLength: 12 }).map(encodeURIComponent)),
          queryValue,
        ),
        { minLength: 1, maxLength: 5 },
      ),
      separator: fc.constantFrom('&', ';', '&&'),
    })
    .map(({ route, pairs, separator }): MalformedRequest => ({
      defect: 'query',
      method: 'GET',
      path: `${route}?${pairs.map(([key, value]) => `${key}=${value}`).join(separator)}`,
      headers: {
        authorization: `Bearer ${route === '/v1/audit-events' ? context.tokens.auditor : context.tokens.management}`,
      },
      expect: 'not-5xx',
    }));

/** Methods no route has, with a write token and an otherwise valid body: 405 or 404 (or Node's own 400). */
const unexpectedMethod = (context: FuzzContext) =>
  fc
    .record({
      method: fc.constantFrom(
        'PATCH',
        'OPTIONS',
        'TRACE',
        'PROPFIND',
        'PROPPATCH',
        'MKCOL',
        'COPY',
        'MOVE',
        'LOCK',
        'UNLOCK',
        'PURGE',
        'SEARCH',
        'REPORT',
        'LINK',
        'UNLINK',
        'QUERY',
        'SUBSCRIBE',
        'MERGE',
      ),
      path: anyApiPath(context),
      body: fc.option(fc.oneof(acceptableCreateBody, acceptableRotateBody), { nil: undefined }),
    })
    .map(({ method, path, body }): MalformedRequest => ({
      defect: 'method',
      method,
      path,
      headers: {
        authorization: `Bearer ${context.tokens.management}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body }),
      // express answers OPTIONS itself on routes without an explicit handler (200 with Allow): harmless.
      expect: method === 'OPTIONS' ? 'not-5xx' : '4xx',
    }));

/** Well-formed writes by identities without the write permission: 403, audited, nothing stored. */
const forbidden = (context: FuzzContext) =>
  fc
    .record({
      token: fc.constantFrom(
        context.tokens.worker,
        context.tokens.auditor,
        context.tokens.keyAdmin,
        context.tokens.fleetA,
        context.tokens.nobody,
      ),
      action: fc.constantFrom('create', 'rotate', 'delete'),
      id: existingId(context),
      create: acceptableCreateBody,
      rotate: acceptableRotateBody,
    })
    .map(({ token, action, id, create, rotate }): MalformedRequest => {
      const request =
        action === 'create'
          ? { method: 'POST', path: '/v1/device-groups', body: create }
          : action === 'rotate'
            ? { method: 'PUT', path: `/v1/device-groups/${id}/provision-secret`, body: rotate }
            : { method: 'DELETE', path: `/v1/device-groups/${id}` };
      return {
        defect: 'permission',
        ...request,
        headers: {
          authorization: `Bearer ${token}`,
          ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        expect: '403',
      };
    });

/** Reads with odd headers (request ids, huge or many headers, forwarding headers): never a 5xx. */
const oddHeaders = (context: FuzzContext) =>
  fc
    .record({
      read: fc.oneof(
        existingId(context).map((id) => ({
          path: `/v1/device-groups/${id}/provision-secret`,
          token: context.tokens.worker,
        })),
        fc.constant({ path: '/v1/device-groups', token: context.tokens.management }),
      ),
      method: fc.constantFrom('GET', 'HEAD'),
      extra: fc.oneof(
        fc.record({ 'x-request-id': printableAscii(300) }),
        fc.record({
          accept: printableAscii(80),
          'accept-encoding': fc.constantFrom('gzip', 'br', '*', 'identity;q=0', 'x'),
        }),
        fc.record({
          'x-forwarded-for': printableAscii(60),
          forwarded: printableAscii(60),
          'x-real-ip': printableAscii(20),
        }),
        fc.record({
          range: printableAscii(30),
          'if-none-match': printableAscii(30),
          'if-modified-since': printableAscii(30),
        }),
        fc.record({ 'content-type': printableAscii(60), 'content-length': fc.constant('0') }),
        fc.record({ 'x-huge': fc.integer({ min: 8_000, max: 20_000 }).map((length) => 'h'.repeat(length)) }),
        fc
          .integer({ min: 50, max: 300 })
          .map((count) =>
            Object.fromEntries(Array.from({ length: count }, (_, index) => [`x-many-${index}`, String(index)])),
          ),
        fc.record({ cookie: printableAscii(200) }),
      ),
    })
    .map(({ read, method, extra }): MalformedRequest => ({
      defect: 'headers',
      method,
      path: read.path,
      headers: { ...extra, authorization: `Bearer ${read.token}` },
      expect: 'not-5xx',
    }));

/** Paths outside the API, any method, no token: 404s and health answers, never a 5xx. */
const offApi = () =>
  fc
    .record({
      method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH'),
      path: fc.oneof(
        fc.webPath().map((path) => (path.startsWith('/') ? path : `/${path}`)),
        fc.constantFrom(
          '/',
          '//',
          '/healthz',
          '/readyz',
          '/metrics',
          '/openapi.json',
          '/v2/device-groups',
          '/v1',
          '/v1/',
          '/%ZZ',
          '/..%2f..%2fetc/passwd',
          '/healthz?x=%ZZ',
          '/*',
          '/v1/device-groups/a/b/c',
        ),
      ),
      body: fc.option(printableAscii(100), { nil: undefined }),
    })
    .map(({ method, path, body }): MalformedRequest => ({
      defect: 'path',
      method,
      path: path.replace(/[^\x21-\x7e]/g, encodeURIComponent),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body }),
      expect: 'not-5xx',
    }));

export function malformedRequest(context: FuzzContext): fc.Arbitrary<MalformedRequest> {
  return fc.oneof(
    { arbitrary: unauthenticated(context), weight: 4 },
    { arbitrary: defectiveBody(context), weight: 4 },
    { arbitrary: wrongContentType(context), weight: 2 },
    { arbitrary: defectiveId(context), weight: 3 },
    { arbitrary: defectiveQuery(context), weight: 2 },
    { arbitrary: unexpectedMethod(context), weight: 1 },
    { arbitrary: forbidden(context), weight: 2 },
    { arbitrary: oddHeaders(context), weight: 1 },
    { arbitrary: offApi(), weight: 1 },
  );
}
