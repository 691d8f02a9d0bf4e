/**
 * RFC 9457 problem details. Every error the service sends is one of these, as
 * application/problem+json, with a fixed type URI per kind and a detail that never carries
 * secret material or a stack trace.
 */
import type { Response } from 'express';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
const TYPE_BASE = 'https://provsec.dev/problems/';

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  requestId?: string;
  [extension: string]: unknown;
}

/** An error that knows its HTTP problem. Thrown by handlers; rendered by the error handler. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly kind: string,
    readonly title: string,
    readonly detail: string,
    readonly headers: Readonly<Record<string, string>> = {},
    readonly extensions: Readonly<Record<string, unknown>> = {},
  ) {
    super(detail);
    this.name = 'HttpProblem';
  }
}

export const problems = {
  badRequest: (detail: string, extensions: Record<string, unknown> = {}) =>
    new HttpProblem(400, 'bad-request', 'Bad Request', detail, {}, extensions),
  malformedJson: () => new HttpProblem(400, 'malformed-json', 'Malformed JSON', 'The request body is not valid JSON.'),
  unauthorized: () =>
    new HttpProblem(401, 'unauthorized', 'Unauthorized', 'A valid bearer token is required.', {
      'WWW-Authenticate': 'Bearer realm="provsec", error="invalid_token"',
    }),
  forbidden: () =>
    new HttpProblem(403, 'forbidden', 'Forbidden', 'The token does not grant this action on this resource.'),
  recipientKeyNotRegistered: () =>
    new HttpProblem(
      403,
      'recipient-key-not-registered',
      'Recipient Key Not Registered',
      'The key named by Provsec-Recipient-Thumbprint is not registered for this identity and group.',
    ),
  notFound: (detail = 'No such resource.') => new HttpProblem(404, 'not-found', 'Not Found', detail),
  methodNotAllowed: (allowed: readonly string[]) =>
    new HttpProblem(405, 'method-not-allowed', 'Method Not Allowed', `Allowed methods: ${allowed.join(', ')}.`, {
      Allow: allowed.join(', '),
    }),
  conflict: (detail: string) => new HttpProblem(409, 'conflict', 'Conflict', detail),
  payloadTooLarge: (limitBytes: number) =>
    new HttpProblem(413, 'payload-too-large', 'Payload Too Large', `The request body exceeds ${limitBytes} bytes.`),
  unsupportedMediaType: () =>
    new HttpProblem(
      415,
      'unsupported-media-type',
      'Unsupported Media Type',
      'This route accepts application/json only.',
    ),
  tooManyRequests: (retryAfterSeconds: number) =>
    new HttpProblem(
      429,
      'too-many-requests',
      'Too Many Requests',
      'Secret read rate limit reached for this identity.',
      { 'Retry-After': String(retryAfterSeconds) },
    ),
  internal: (detail = 'The server could not complete the request.') =>
    new HttpProblem(500, 'internal', 'Internal Server Error', detail),
  unavailable: (detail: string) =>
    new HttpProblem(503, 'unavailable', 'Service Unavailable', detail, { 'Retry-After': '1' }),
};

export function problemBody(problem: HttpProblem, requestId: string | undefined): ProblemBody {
  return {
    ...problem.extensions,
    type: TYPE_BASE + problem.kind,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    ...(requestId ? { requestId } : {}),
  };
}

export function sendProblem(res: Response, problem: HttpProblem): void {
  const requestId = res.locals.requestId as string | undefined;
  for (const [name, value] of Object.entries(problem.headers)) res.setHeader(name, value);
  res
    .status(problem.status)
    .type(PROBLEM_CONTENT_TYPE)
    .send(JSON.stringify(problemBody(problem, requestId)));
}
