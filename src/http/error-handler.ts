/**
 * The one place errors become HTTP responses. Our own typed errors map to their problem; body-parser
 * failures map to 400/413/415; anything else is a 500 whose details go to the log, never the body.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from '../log/logger';
import { HttpProblem, problems, sendProblem } from './problem';

export type ErrorMapper = (error: unknown) => HttpProblem | undefined;

export const JSON_BODY_LIMIT_BYTES = 16 * 1024;

interface BodyParserError {
  type?: string;
  status?: number;
}

function mapBodyParserError(error: unknown): HttpProblem | undefined {
  const type = (error as BodyParserError | null)?.type;
  switch (type) {
    case 'entity.parse.failed':
      return problems.malformedJson();
    case 'entity.too.large':
      return problems.payloadTooLarge(JSON_BODY_LIMIT_BYTES);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return problems.unsupportedMediaType();
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return problems.badRequest('The request body could not be read.');
    default:
      // express's router could not percent-decode a path parameter (`/v1/device-groups/%E0%A4`).
      if (error instanceof URIError && (error as BodyParserError).status === 400)
        return problems.badRequest('The request path is not valid percent-encoding.');
      // body-parser could not undo the body's content coding (a corrupt gzip, deflate or br stream):
      // the zlib error arrives as an http-errors 400 with `expose` set but no `type`.
      if (isExposedClientError(error)) return problems.badRequest('The request body could not be read.');
      return undefined;
  }
}

function isExposedClientError(error: unknown): boolean {
  const { status, expose } = (error ?? {}) as BodyParserError & { expose?: unknown };
  return expose === true && typeof status === 'number' && status >= 400 && status < 500;
}

export function errorHandler(logger: Logger, mappers: readonly ErrorMapper[] = []): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    let problem: HttpProblem | undefined = error instanceof HttpProblem ? error : mapBodyParserError(error);
    for (const mapper of mappers) problem ??= mapper(error);
    const log = (res.locals.log as Logger | undefined) ?? logger;
    if (!problem) {
      log.error({ err: error, method: req.method, path: req.path }, 'unhandled error');
      problem = problems.internal();
    } else if (problem.status >= 500) {
      log.error(
        { errorName: (error as Error).name, reason: (error as Error).message, method: req.method, path: req.path },
        'request failed',
      );
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendProblem(res, problem);
  };
}

export function notFoundHandler(): RequestHandler {
  return (_req, _res, next) => next(problems.notFound('No route matches this path.'));
}

/** JSON routes only take JSON: anything else with a body is 415 before parsing. */
export function requireJsonBody(): RequestHandler {
  return (req, _res, next) => {
    const hasBody =
      req.headers['transfer-encoding'] !== undefined ||
      (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    if (hasBody && !req.is('application/json')) {
      next(problems.unsupportedMediaType());
      return;
    }
    next();
  };
}
