/**
 * Production's rule for everything the service calls: a verified TLS connection, unless the peer is
 * on this host (loopback: the Vault Agent's API proxy, a database proxy sidecar) or behind a Unix
 * socket, where there is no network to read. Pure functions over the configured URLs; config.ts
 * turns a returned problem into a ConfigError naming the variable.
 */
import { isIPv4 } from 'node:net';

/** 127.0.0.0/8, ::1, localhost: traffic that never leaves the host (or the pod's network namespace). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host === '::1' || host === '0:0:0:0:0:0:0:1') return true;
  return isIPv4(host) && host.startsWith('127.');
}

/** Undefined when `url` is https, or http to a loopback host; otherwise what is wrong. */
export function httpsProblem(url: string): string | undefined {
  const parsed = new URL(url);
  if (parsed.protocol === 'https:' || isLoopbackHost(parsed.hostname)) return undefined;
  return 'must be an https:// URL when NODE_ENV=production (http:// only to a loopback host)';
}

/** The libpq modes that verify the server's certificate (pg 8 also checks the host name for verify-ca). */
const VERIFYING_SSL_MODES = ['verify-full', 'verify-ca'];

/**
 * Undefined when the Postgres URL asks pg for a verified TLS connection (sslmode=verify-full or
 * verify-ca; the CA from sslrootcert or the system store), or names a loopback host or a Unix socket.
 */
export function databaseUrlProblem(databaseUrl: string): string | undefined {
  const parsed = new URL(databaseUrl);
  const last = (name: string) => parsed.searchParams.getAll(name).at(-1);
  // pg-connection-string lets ?host= override the URL's host; a path there (or in the host) is a socket.
  const host = last('host') ?? decodeURIComponent(parsed.hostname);
  if (host.startsWith('/') || (host !== '' && isLoopbackHost(host))) return undefined;
  const sslMode = last('sslmode');
  if (sslMode === undefined || !VERIFYING_SSL_MODES.includes(sslMode))
    return `must ask for a verified TLS connection when NODE_ENV=production: add sslmode=verify-full (or verify-ca), with sslrootcert=<CA file> unless the system store holds the CA (sslmode is ${sslMode ?? 'unset'})`;
  // With libpq semantics pg would not check the host name, and without a CA it refuses to connect at all.
  if (sslMode === 'verify-ca' && last('uselibpqcompat') === 'true' && last('sslrootcert') === undefined)
    return 'sslmode=verify-ca with uselibpqcompat=true needs sslrootcert=<CA file>';
  return undefined;
}
