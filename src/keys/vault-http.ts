/**
 * Talking to Vault through node-vault: authentication, bounded timeouts and error classification.
 * Invariants: every call ends within `timeoutMs` (node-vault's axios timeout, plus our own
 * wall-clock race in case a socket trickles); in `agent` mode no token is ever sent (the Vault
 * Agent's API proxy adds its own); tokens, JWTs and response bodies never reach a log line or an
 * error message; a token it stops using is revoked (every login is a live token in Vault), and
 * logins that do not help (refused, or their token denied too) back off exponentially.
 */
import { readFile } from 'node:fs/promises';
import nodeVault from 'node-vault';
import type { Logger } from 'pino';
import { z } from 'zod';
import { KeySourceLoadError, type KeySourceFailureReason } from './errors';
import { redactKeyLikeText } from './safe-text';

export type VaultAuth =
  | { readonly mode: 'agent' }
  | {
      readonly mode: 'kubernetes';
      readonly role: string;
      readonly mount: string;
      readonly serviceAccountTokenFile: string;
    };

export interface VaultHttpOptions {
  readonly address: string;
  readonly namespace: string | undefined;
  readonly timeoutMs: number;
  readonly auth: VaultAuth;
  readonly logger: Logger;
  /** The clock for token expiry and login backoff (tests inject one). */
  readonly nowMs?: () => number;
}

/**
 * After a login is refused, or a fresh token is denied as well (a missing policy: logging in again
 * cannot help), the next login waits initialMs, doubling up to maxMs; any answered request resets it.
 */
export const LOGIN_BACKOFF = { initialMs: 5_000, maxMs: 600_000 } as const;

/** A GET's outcome: 404 is an answer, not an error, because KV v2 puts deletion metadata in its body. */
export type VaultReadAnswer =
  { readonly status: 200; readonly body: unknown } | { readonly status: 404; readonly body: unknown };

const authAnswer = z.object({
  auth: z.object({
    client_token: z.string().min(1),
    lease_duration: z.number().int().nonnegative(),
    renewable: z.boolean(),
  }),
});

/** Renew (or log in again) when two thirds of the token's lease have passed. */
const RENEW_AT_FRACTION = 2 / 3;

export class VaultHttp {
  private readonly client: nodeVault.client;
  private tokenExpiresAtMs = 0;
  private tokenLeaseSeconds = 0;
  /** The lease the last login granted (the role's token_ttl): a renewal granting less has hit token_max_ttl. */
  private loginLeaseSeconds = 0;
  private loginRunning: Promise<void> | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly now: () => number;
  /** Logins in a row that did not help; the next login waits until nextLoginAtMs. */
  private uselessLogins = 0;
  private nextLoginAtMs = 0;
  private lastLoginFailure: KeySourceLoadError | undefined;
  /** revoke-self calls in flight, awaited by close(). */
  private readonly revocations = new Set<Promise<void>>();

  constructor(private readonly options: VaultHttpOptions) {
    this.now = options.nowMs ?? Date.now;
    const vaultOptions: nodeVault.VaultOptions & { rpDefaults: { strictSSL: boolean } } = {
      endpoint: options.address,
      apiVersion: 'v1',
      requestOptions: { timeout: options.timeoutMs },
      // node-vault's debug output includes request bodies (the Kubernetes JWT on login).
      debug: () => undefined,
      // node-vault would turn TLS verification off if VAULT_SKIP_VERIFY is set; config lives in config.ts only.
      rpDefaults: { strictSSL: true },
    };
    this.client = nodeVault(vaultOptions);
    // node-vault falls back to VAULT_TOKEN / VAULT_NAMESPACE / VAULT_PREFIX from the environment;
    // pin them so only our options decide what is sent (and agent mode sends no token at all).
    const pinned = this.client as unknown as { token: string; namespace: string; pathPrefix: string };
    pinned.token = '';
    pinned.namespace = options.namespace ?? '';
    pinned.pathPrefix = '';
  }

  /** GET /v1/<path>, authenticated as configured. */
  read(path: string): Promise<VaultReadAnswer> {
    return this.withAuthentication(`GET ${path}`, async () => {
      try {
        return {
          status: 200,
          body: await this.bounded<unknown>(this.client.read(path, { timeout: this.options.timeoutMs })),
        };
      } catch (error) {
        if (statusOf(error) === 404) return { status: 404, body: bodyOf(error) };
        throw error;
      }
    });
  }

  /** Stops renewing and revokes the token in use: nothing this process logged in with outlives it. */
  async close(): Promise<void> {
    this.closed = true;
    // A login in flight would otherwise hand back a token nobody revokes.
    await this.loginRunning?.catch(() => undefined);
    this.forgetToken();
    await Promise.all([...this.revocations]);
  }

  private async withAuthentication<T>(what: string, call: () => Promise<T>): Promise<T> {
    if (this.options.auth.mode === 'agent') {
      try {
        return await call();
      } catch (error) {
        throw classifyVaultError(error, what);
      }
    }
    await this.ensureLoggedIn();
    try {
      return this.answered(await call());
    } catch (error) {
      if (statusOf(error) !== 403) throw classifyVaultError(error, what);
      const denied = classifyVaultError(error, what);
      // A login now would be one more live token that the same denial meets: wait out the backoff.
      if (this.now() < this.nextLoginAtMs) throw this.backingOff(denied);
      // 403 with a token we thought valid: revoked or expired early. Log in again once, retry once.
      this.options.logger.warn({ request: what }, 'Vault answered 403; logging in again and retrying once');
      this.forgetToken();
      await this.ensureLoggedIn();
      try {
        return this.answered(await call());
      } catch (retryError) {
        const failure = classifyVaultError(retryError, what);
        // The fresh token is denied too: the policy, not the token, is wrong. Keep it and back off.
        if (statusOf(retryError) === 403) this.loginDidNotHelp(failure);
        throw failure;
      }
    }
  }

  private async ensureLoggedIn(): Promise<void> {
    // Once closed, never log in again: close() has revoked the last token, and a load still running
    // at stop (its next read comes after close) would otherwise bring back a live one nobody revokes.
    if (this.closed) throw new KeySourceLoadError('unreachable', 'the Vault client is closed (the key source stopped)');
    if (this.client.token !== '' && this.now() < this.tokenExpiresAtMs) return;
    // An expired token needs no revocation: Vault has already let it go.
    this.client.token = '';
    if (this.now() < this.nextLoginAtMs && this.lastLoginFailure) throw this.backingOff(this.lastLoginFailure);
    this.loginRunning ??= this.logIn().finally(() => {
      this.loginRunning = undefined;
    });
    await this.loginRunning;
  }

  /** Vault answered a request (200, or a KV 404 with its body): the token works, so no login is wasted. */
  private answered<T>(value: T): T {
    this.uselessLogins = 0;
    this.nextLoginAtMs = 0;
    this.lastLoginFailure = undefined;
    return value;
  }

  private loginDidNotHelp(failure: KeySourceLoadError): void {
    this.uselessLogins += 1;
    const delayMs = Math.min(LOGIN_BACKOFF.maxMs, LOGIN_BACKOFF.initialMs * 2 ** Math.min(this.uselessLogins - 1, 30));
    this.nextLoginAtMs = this.now() + delayMs;
    this.lastLoginFailure = failure;
    this.options.logger.warn(
      { reason: failure.reason, uselessLogins: this.uselessLogins, nextLoginInMs: delayMs },
      'Vault login did not help; backing off before logging in again',
    );
  }

  private backingOff(failure: KeySourceLoadError): KeySourceLoadError {
    const waitMs = Math.max(0, this.nextLoginAtMs - this.now());
    return new KeySourceLoadError(
      failure.reason,
      `${failure.message}; not logging in again for ${Math.ceil(waitMs / 1000)} s (${this.uselessLogins} logins in a row did not help)`,
    );
  }

  private async logIn(): Promise<void> {
    const auth = this.options.auth;
    if (auth.mode !== 'kubernetes') return;
    let jwt: string;
    try {
      // Read on every login: projected service-account tokens are rotated by the kubelet.
      jwt = (await readFile(auth.serviceAccountTokenFile, 'utf8')).trim();
    } catch (error) {
      const unreadable = new KeySourceLoadError(
        'forbidden',
        `cannot read the service-account token file ${auth.serviceAccountTokenFile} (${(error as NodeJS.ErrnoException).code ?? 'unknown'})`,
      );
      this.loginDidNotHelp(unreadable);
      throw unreadable;
    }
    // A stale token on a login request is useless; send none.
    this.client.token = '';
    let answer: unknown;
    try {
      answer = await this.bounded(
        this.client.kubernetesLogin({
          role: auth.role,
          jwt,
          mount_point: auth.mount,
          requestOptions: { timeout: this.options.timeoutMs },
        }),
      );
    } catch (error) {
      const refused = classifyVaultError(error, `Kubernetes login (auth/${auth.mount}/login, role ${auth.role})`);
      // A refused login (4xx) is retried on the backoff; an unreachable Vault is not a wasted token.
      const status = statusOf(error);
      if (status !== undefined && status >= 400 && status < 500) this.loginDidNotHelp(refused);
      throw refused;
    }
    this.loginLeaseSeconds = this.adoptToken(answer, 'login').leaseSeconds;
    this.options.logger.info(
      { leaseDurationSeconds: this.tokenLeaseSeconds, role: auth.role, mount: auth.mount },
      'logged in to Vault with Kubernetes auth',
    );
  }

  /** Takes the token from a login or renew answer and plans its renewal. */
  private adoptToken(answer: unknown, from: 'login' | 'renew'): { leaseSeconds: number; renewable: boolean } {
    const parsed = authAnswer.safeParse(answer);
    if (!parsed.success) {
      this.forgetToken();
      throw new KeySourceLoadError('bad_response', `Vault's ${from} answer has no usable auth block`);
    }
    const { client_token: clientToken, lease_duration: leaseSeconds, renewable } = parsed.data.auth;
    this.client.token = clientToken;
    this.tokenLeaseSeconds = leaseSeconds;
    // A zero lease means a token that does not expire (root-like); treat it as valid until a 403 says otherwise.
    this.tokenExpiresAtMs = leaseSeconds > 0 ? this.now() + leaseSeconds * 1000 : Number.POSITIVE_INFINITY;
    this.scheduleRefresh(leaseSeconds, renewable);
    return { leaseSeconds, renewable };
  }

  private scheduleRefresh(leaseSeconds: number, renewable: boolean): void {
    clearTimeout(this.renewTimer);
    if (leaseSeconds <= 0 || this.closed) return;
    this.renewTimer = setTimeout(() => void this.refreshToken(renewable), leaseSeconds * 1000 * RENEW_AT_FRACTION);
    this.renewTimer.unref();
  }

  /** Renew a renewable token; otherwise (or once renewal is capped by max_ttl) log in afresh. */
  private async refreshToken(renewable: boolean): Promise<void> {
    if (this.closed) return;
    try {
      if (!renewable) {
        await this.logInAfresh();
        return;
      }
      let answer: unknown;
      try {
        answer = await this.bounded(
          this.client.tokenRenewSelf({ requestOptions: { timeout: this.options.timeoutMs } }),
        );
      } catch (error) {
        throw classifyVaultError(error, 'POST auth/token/renew-self');
      }
      const renewed = this.adoptToken(answer, 'renew');
      this.options.logger.debug({ leaseDurationSeconds: renewed.leaseSeconds }, 'renewed the Vault token');
      // Vault grants no renewal past the token's max TTL, so a lease shorter than the login's means
      // the token is near its end: renewing again would only shrink it further. Log in afresh
      // instead, at once if nothing is left (a 0 lease here is not "never expires").
      if (renewed.leaseSeconds < this.loginLeaseSeconds) {
        this.options.logger.info(
          { leaseDurationSeconds: renewed.leaseSeconds, loginLeaseSeconds: this.loginLeaseSeconds },
          'Vault capped the renewal at the token max TTL; logging in afresh before it expires',
        );
        if (renewed.leaseSeconds <= 0) await this.logInAfresh();
        else this.scheduleRefresh(renewed.leaseSeconds, false);
      }
    } catch (error) {
      const failure = classifyVaultError(error, 'token refresh');
      this.options.logger.warn(
        { reason: failure.reason, error: failure.message },
        'Vault token refresh failed; the next request logs in again',
      );
      this.forgetToken();
    }
  }

  /** Replaces the token in use by a new login, then revokes the old one (reads in flight may still carry it). */
  private async logInAfresh(): Promise<void> {
    const previous = this.client.token;
    this.client.token = '';
    this.tokenExpiresAtMs = 0;
    clearTimeout(this.renewTimer);
    try {
      await this.ensureLoggedIn();
    } finally {
      if (typeof previous === 'string' && previous !== '') this.revoke(previous);
    }
  }

  /** Drops the token in use and revokes it: a token we no longer use must not stay live in Vault. */
  private forgetToken(): void {
    const previous = this.client.token;
    this.client.token = '';
    this.tokenExpiresAtMs = 0;
    clearTimeout(this.renewTimer);
    if (typeof previous === 'string' && previous !== '') this.revoke(previous);
  }

  /** POST auth/token/revoke-self with that token (Vault answers 204); best effort, bounded, never thrown. */
  private revoke(token: string): void {
    const revocation = this.bounded(
      this.client.request({
        path: '/auth/token/revoke-self',
        method: 'POST',
        headers: { 'X-Vault-Token': token },
        timeout: this.options.timeoutMs,
      }),
    )
      .then(() => undefined)
      .catch((error: unknown) => {
        // 403: Vault no longer knows the token (revoked or expired already), which is what we wanted.
        if (statusOf(error) === 403) return;
        const failure = classifyVaultError(error, 'POST auth/token/revoke-self');
        this.options.logger.warn(
          { reason: failure.reason, error: failure.message },
          'could not revoke a Vault token no longer in use; it lives until its TTL ends',
        );
      })
      .finally(() => this.revocations.delete(revocation));
    this.revocations.add(revocation);
  }

  /** Our own wall-clock bound on top of axios's timeout. */
  private bounded<T>(call: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new VaultCallTimeout(this.options.timeoutMs)), this.options.timeoutMs + 50);
    });
    return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
  }
}

class VaultCallTimeout extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
  }
}

function statusOf(error: unknown): number | undefined {
  const response = (error as { response?: { statusCode?: unknown } } | null)?.response;
  return typeof response?.statusCode === 'number' ? response.statusCode : undefined;
}

function bodyOf(error: unknown): unknown {
  return (error as { response?: { body?: unknown } }).response?.body;
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);
const TIMEOUT_CODES = new Set(['ECONNABORTED', 'ETIMEDOUT']);

/** Maps whatever node-vault/axios threw to a reason and a message of our own words (plus Vault's short error text). */
export function classifyVaultError(error: unknown, what: string): KeySourceLoadError {
  if (error instanceof KeySourceLoadError) return error;
  if (error instanceof VaultCallTimeout)
    return new KeySourceLoadError('timeout', `Vault ${what}: no answer within ${error.timeoutMs} ms`);
  const status = statusOf(error);
  if (status !== undefined) {
    const reason: KeySourceFailureReason =
      status === 503
        ? serviceUnavailableReason(error)
        : status === 500 && agentProxyLostVault(error)
          ? 'unreachable'
          : status === 403
            ? 'forbidden'
            : status === 404
              ? 'not_found'
              : 'vault_error';
    return new KeySourceLoadError(reason, `Vault ${what}: HTTP ${status}${vaultErrorText(error)}`);
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && TIMEOUT_CODES.has(code))
    return new KeySourceLoadError('timeout', `Vault ${what}: timed out (${code})`);
  if (typeof code === 'string' && UNREACHABLE_CODES.has(code))
    return new KeySourceLoadError('unreachable', `Vault ${what}: unreachable (${code})`);
  return new KeySourceLoadError(
    'vault_error',
    `Vault ${what}: unexpected ${error instanceof Error ? error.name : typeof error}${typeof code === 'string' ? ` (${code})` : ''}`,
  );
}

/**
 * The Vault Agent's API proxy answers 500 "failed to get the response: ..." when the Vault behind
 * it does not answer (hashicorp/vault command/agentproxyshared/cache/handler.go, ProxyHandler):
 * Vault is unreachable, not in error.
 */
function agentProxyLostVault(error: unknown): boolean {
  return /^ \(failed to get the response: /.test(vaultErrorText(error));
}

/**
 * Not every 503 is "sealed": Vault answers 503 when sealed ("Vault is sealed"), and a standby that
 * finds no active node answers 503 "no active Vault instance found" (hashicorp/vault
 * http/handler.go, respondStandby); an operator fixes the two differently.
 */
function serviceUnavailableReason(error: unknown): KeySourceFailureReason {
  const text = vaultErrorText(error);
  if (/sealed/i.test(text)) return 'sealed';
  if (/no active Vault instance/i.test(text)) return 'standby';
  return 'vault_error';
}

/**
 * Vault's `errors` array holds short operator text ("Vault is sealed"), or for a denial go-multierror's
 * list ("1 error occurred:\n\t* permission denied\n\n"): the list's items are joined on one line.
 */
function vaultErrorText(error: unknown): string {
  const errors = (bodyOf(error) as { errors?: unknown } | undefined)?.errors;
  if (!Array.isArray(errors) || typeof errors[0] !== 'string' || errors[0] === '') return '';
  const items = [...errors[0].matchAll(/^\t\* (.+)$/gm)].map((match) => match[1] as string);
  const text = items.length > 0 ? items.join('; ') : errors[0];
  return ` (${redactKeyLikeText(text.replace(/\s+/g, ' ').trim().slice(0, 160))})`;
}
