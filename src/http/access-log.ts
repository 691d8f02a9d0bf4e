/**
 * The access log: one line per request (probes and scrapes excepted), written when the response
 * has been sent, or when the connection closed first. Fields: `req` (method, url, the caller's
 * X-Request-Id), `requestId`, `res.statusCode`, `responseTime` in ms, and a message saying how it
 * ended. Handlers log through `res.locals.log`, a logger bound to the same `req` and `requestId`.
 *
 * Why not pino-http (which wrote the same line before): it made two child loggers per request,
 * each serializing and redacting the request's fields, whether or not anything but the access line
 * was ever logged; that was most of the logging's ~70 µs per request. Here the child logger is
 * made only when a handler logs, and the line goes through the base logger once (with its redaction
 * and log hook, like every other line).
 */
import type { RequestHandler, Response } from 'express';
import type { Logger } from '../log/logger';
import { REQUEST_ID_HEADER } from './request-id';

export interface AccessLogOptions {
  /** Requests not worth a line (liveness probes, metric scrapes), by path. */
  readonly ignore: (path: string) => boolean;
}

/** Needs res.locals.requestId (requestIdMiddleware runs first). Sets res.locals.log. */
export function accessLogMiddleware(logger: Logger, options: AccessLogOptions): RequestHandler {
  return (req, res, next) => {
    const startedAtMs = Date.now();
    const requestId = res.locals.requestId as string;
    // The url as received (routers rewrite req.url while they match; originalUrl is kept).
    const requestFields = {
      method: req.method,
      url: req.originalUrl,
      [REQUEST_ID_HEADER]: req.headers[REQUEST_ID_HEADER],
    };
    let requestLogger: Logger | undefined;
    Object.defineProperty(res.locals, 'log', {
      get: () => (requestLogger ??= logger.child({ req: requestFields, requestId })),
      enumerable: true,
      configurable: true,
    });
    if (!options.ignore(req.path)) {
      const writeLine = (): void => {
        res.off('finish', writeLine);
        res.off('close', writeLine);
        logger.info(
          {
            req: requestFields,
            requestId,
            res: { statusCode: res.statusCode },
            responseTime: Date.now() - startedAtMs,
          },
          howItEnded(res),
        );
      };
      res.on('finish', writeLine);
      res.on('close', writeLine);
    }
    next();
  };
}

function howItEnded(res: Response): string {
  if (!res.writableEnded || res.req.readableAborted) return 'request aborted';
  return res.statusCode >= 500 ? 'request errored' : 'request completed';
}
