/**
 * helmet's security headers on every response, computed once at start-up: helmet's own middleware
 * runs once against a recording response, and each request then gets the recorded headers.
 * helmet stays the one source of the header names and values (upgrading it changes them here too);
 * what is saved is running its thirteen middleware functions, and the CSP string they rebuild, on
 * every request.
 * Invariant: the recorded headers are exactly what helmet() sets, because with our options none of
 * them depends on the request (test/http/security-headers.test.ts compares the two on live routes).
 */
import type { RequestHandler } from 'express';
import helmet from 'helmet';

type HeaderList = ReadonlyArray<readonly [name: string, value: string]>;

/** The headers helmet() sets (and the ones it removes), read by running it once. */
export function recordHelmetHeaders(): { readonly set: HeaderList; readonly removed: readonly string[] } {
  const set: Array<[string, string]> = [];
  const removed: string[] = [];
  // Only these two methods exist: if a helmet upgrade ever reads the request or calls anything else
  // on the response, start-up fails here instead of silently recording the wrong headers.
  const recorder = {
    setHeader(name: string, value: unknown) {
      if (typeof value !== 'string') throw new TypeError(`helmet set ${name} to a non-string value`);
      set.push([name, value]);
    },
    removeHeader(name: string) {
      removed.push(name);
    },
  };
  let nextCalled = false;
  helmet()({} as never, recorder as never, (error?: unknown) => {
    if (error !== undefined) throw error instanceof Error ? error : new Error('helmet failed while recording');
    nextCalled = true;
  });
  // helmet is synchronous: it has finished by now, or the recording is incomplete.
  if (!nextCalled) throw new Error('helmet did not finish synchronously; its headers cannot be recorded');
  return { set, removed };
}

export function securityHeadersMiddleware(): RequestHandler {
  const { set, removed } = recordHelmetHeaders();
  return (_req, res, next) => {
    for (const [name, value] of set) res.setHeader(name, value);
    for (const name of removed) res.removeHeader(name);
    next();
  };
}
