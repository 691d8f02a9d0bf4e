import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';

export const REQUEST_ID_HEADER = 'x-request-id';
// Bounded and printable: the id goes into logs and audit rows, so it must not carry
// newlines (log injection) or unbounded data.
const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Accepts a caller's well-formed X-Request-Id, otherwise makes one; echoes it on the response. */
export function requestIdMiddleware(): RequestHandler {
  return (req, res, next) => {
    const offered = req.header(REQUEST_ID_HEADER);
    const requestId = offered !== undefined && VALID_REQUEST_ID.test(offered) ? offered : randomUUID();
    res.locals.requestId = requestId;
    res.setHeader('X-Request-Id', requestId);
    next();
  };
}
