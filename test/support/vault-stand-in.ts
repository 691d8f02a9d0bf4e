/**
 * A STAND-IN FOR HASHICORP VAULT, for tests only. It is NOT Vault and does no cryptography or
 * policy checks beyond what the tests need. It answers the few routes the provsec vault key
 * source calls, with the request and response JSON shapes of Vault's documented HTTP API:
 *   GET  /v1/{mount}/data/{path}[?version=N]   KV v2 "read secret version"
 *   GET  /v1/{mount}/metadata/{path}           KV v2 "read secret metadata"
 *   POST /v1/auth/{mount}/login                Kubernetes auth login {role, jwt}
 *   POST /v1/auth/token/renew-self             token renewal
 *   POST /v1/auth/token/revoke-self            token revocation (204, no body)
 * Errors come as {"errors": [...]}: 403 for a missing, unknown, revoked or expired token, 404 for
 * an unknown path or version (a deleted or destroyed version: 404 WITH its metadata, as Vault
 * does), 503 while "sealed". Tests drive it: write versions, delete/destroy them, seal, slow every
 * answer, revoke tokens, and read back what was requested.
 *
 * mode 'server': behaves as Vault itself (X-Vault-Token required on KV routes).
 * mode 'agent-proxy': behaves as the Vault Agent's local API proxy, which adds its own token, so
 * clients must send none (recorded in `requests` for the tests to check).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface KubernetesAuthStandIn {
  readonly mount: string;
  readonly role: string;
  /** The service-account JWT the login must present (the stand-in's TokenReview: any other is denied). */
  readonly jwt: string;
  /** The role's bound `audience` (vault/setup.sh binds `vault`); a JWT whose `aud` lacks it is refused. */
  readonly audience: string;
  /** lease_duration of issued tokens, whole seconds as in Vault. */
  readonly tokenTtlSeconds: number;
  /** The role's token_max_ttl: renew-self grants no lease past it (undefined: no cap). */
  readonly maxTtlSeconds?: number;
  readonly renewable: boolean;
}

export interface VaultStandInOptions {
  readonly mode: 'server' | 'agent-proxy';
  readonly kubernetes?: KubernetesAuthStandIn;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly version: string | null;
  readonly vaultToken: string | undefined;
  readonly vaultNamespace: string | undefined;
  readonly status: number;
}

interface StoredVersion {
  readonly data: Record<string, string>;
  readonly createdTime: string;
  deletionTime: string;
  destroyed: boolean;
}

interface StoredSecret {
  readonly createdTime: string;
  updatedTime: string;
  readonly versions: Map<number, StoredVersion>;
  currentVersion: number;
}

interface IssuedToken {
  readonly accessor: string;
  readonly issuedAtMs: number;
  expiresAtMs: number;
  revoked: boolean;
}

type Answer = { status: number; body: unknown };

export class VaultStandIn {
  readonly requests: RecordedRequest[] = [];
  /** Successful Kubernetes logins. */
  logins = 0;
  /** Successful renew-self calls. */
  renewals = 0;
  /** Successful revoke-self calls. */
  revocations = 0;
  private readonly secrets = new Map<string, StoredSecret>();
  private readonly tokens = new Map<string, IssuedToken>();
  private sealed = false;
  private noActiveNode = false;
  private readsDenied = false;
  private upstreamLost = false;
  private responseDelayMs = 0;
  private readonly pendingTimers = new Set<NodeJS.Timeout>();

  private readonly server: Server;
  private port = 0;

  private constructor(private readonly options: VaultStandInOptions) {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  static async start(options: VaultStandInOptions): Promise<VaultStandIn> {
    const standIn = new VaultStandIn(options);
    await new Promise<void>((resolve) => standIn.server.listen(0, '127.0.0.1', resolve));
    standIn.port = (standIn.server.address() as AddressInfo).port;
    return standIn;
  }

  /** VAULT_ADDR for the source under test. */
  get address(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const timer of this.pendingTimers) clearTimeout(timer);
    this.pendingTimers.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Like `vault kv put mount/path field=value`: returns the new version number. */
  writeSecret(mount: string, path: string, data: Record<string, string>): number {
    const key = `${mount}/${path}`;
    const now = new Date().toISOString();
    const secret = this.secrets.get(key) ?? {
      createdTime: now,
      updatedTime: now,
      versions: new Map(),
      currentVersion: 0,
    };
    this.secrets.set(key, secret);
    secret.currentVersion += 1;
    secret.updatedTime = now;
    secret.versions.set(secret.currentVersion, {
      data: { ...data },
      createdTime: now,
      deletionTime: '',
      destroyed: false,
    });
    return secret.currentVersion;
  }

  /** Like `vault kv delete -versions=N` (soft delete; `at` in the future mimics delete_version_after). */
  deleteVersion(mount: string, path: string, version: number, at: Date = new Date()): void {
    this.version(mount, path, version).deletionTime = at.toISOString();
  }

  /** Like `vault kv destroy -versions=N`: the data is gone for good. */
  destroyVersion(mount: string, path: string, version: number): void {
    this.version(mount, path, version).destroyed = true;
  }

  seal(): void {
    this.sealed = true;
  }

  unseal(): void {
    this.sealed = false;
  }

  /**
   * A standby node that cannot find the active one answers every forwarded request 503 with
   * "no active Vault instance found" (hashicorp/vault http/handler.go, respondStandby): not sealed.
   */
  loseActiveNode(): void {
    this.noActiveNode = true;
  }

  restoreActiveNode(): void {
    this.noActiveNode = false;
  }

  /** Every answer waits this long (a slow or overloaded Vault). */
  setResponseDelayMs(delayMs: number): void {
    this.responseDelayMs = delayMs;
  }

  /** Like `vault token revoke` on every token issued so far: the next use gets 403. */
  revokeAllTokens(): void {
    for (const token of this.tokens.values()) token.revoked = true;
  }

  /**
   * Agent-proxy mode: the Vault behind the agent is unreachable. The proxy answers 500 with
   * "failed to get the response: <the HTTP client's error>" (hashicorp/vault
   * command/agentproxyshared/cache/handler.go, ProxyHandler: logical.RespondError(w, 500, ...)).
   */
  loseUpstream(): void {
    this.upstreamLost = true;
  }

  restoreUpstream(): void {
    this.upstreamLost = false;
  }

  /** Like a role whose policy lacks the KV paths: logins succeed, every KV read is denied. */
  denyReads(): void {
    this.readsDenied = true;
  }

  /** Tokens issued and neither revoked nor expired: what a client has left alive in Vault. */
  liveTokens(): number {
    return [...this.tokens.keys()].filter((token) => this.tokenIsLive(token)).length;
  }

  requestsTo(pathPart: string): RecordedRequest[] {
    return this.requests.filter((request) => request.path.includes(pathPart));
  }

  private version(mount: string, path: string, version: number): StoredVersion {
    const stored = this.secrets.get(`${mount}/${path}`)?.versions.get(version);
    if (!stored) throw new Error(`stand-in: no version ${version} at ${mount}/${path}`);
    return stored;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const requestBody = await readBody(req);
    const answer = this.route(req.method ?? 'GET', url, header(req, 'x-vault-token'), requestBody);
    this.requests.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      version: url.searchParams.get('version'),
      vaultToken: header(req, 'x-vault-token'),
      vaultNamespace: header(req, 'x-vault-namespace'),
      status: answer.status,
    });
    const send = () => {
      if (res.destroyed) return;
      if (answer.status === 204) {
        res.writeHead(204, { 'cache-control': 'no-store' });
        res.end();
        return;
      }
      res.writeHead(answer.status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(answer.body));
    };
    if (this.responseDelayMs <= 0) return send();
    const timer = setTimeout(() => {
      this.pendingTimers.delete(timer);
      send();
    }, this.responseDelayMs);
    this.pendingTimers.add(timer);
  }

  private route(method: string, url: URL, token: string | undefined, requestBody: unknown): Answer {
    if (this.options.mode === 'agent-proxy' && this.upstreamLost)
      return error(
        500,
        'failed to get the response: Get "https://vault.example:8200/v1/kv-dev/metadata/provisioning_secret_enc_key": dial tcp 10.0.0.5:8200: connect: connection refused',
      );
    if (this.sealed) return error(503, 'Vault is sealed');
    if (this.noActiveNode) return error(503, 'no active Vault instance found');
    const path = url.pathname.replace(/^\/v1\//, '');
    const kubernetes = this.options.kubernetes;
    if (method === 'POST' && kubernetes && path === `auth/${kubernetes.mount}/login`)
      return this.login(kubernetes, requestBody);
    if (method === 'POST' && path === 'auth/token/renew-self') return this.renewSelf(token);
    if (method === 'POST' && path === 'auth/token/revoke-self') return this.revokeSelf(token);
    if (method !== 'GET') return error(405, `unsupported operation`);
    if (this.options.mode === 'server' && (!this.tokenIsLive(token) || this.readsDenied)) return denied();
    const kv = /^(.+?)\/(data|metadata)\/(.+)$/.exec(path);
    if (!kv) return error(404, `no handler for route "${path}". route entry not found.`);
    const [, mount, kind, secretPath] = kv as unknown as [string, string, string, string];
    const secret = this.secrets.get(`${mount}/${secretPath}`);
    if (!secret) return { status: 404, body: { errors: [] } };
    return kind === 'metadata' ? this.metadata(secret) : this.readVersion(secret, url.searchParams.get('version'));
  }

  private readVersion(secret: StoredSecret, versionParameter: string | null): Answer {
    const requested =
      versionParameter === null || versionParameter === '0' ? secret.currentVersion : Number(versionParameter);
    const stored = secret.versions.get(requested);
    if (!stored) return { status: 404, body: { errors: [] } };
    const metadata = {
      created_time: stored.createdTime,
      custom_metadata: null,
      deletion_time: stored.deletionTime,
      destroyed: stored.destroyed,
      version: requested,
    };
    const gone = stored.destroyed || (stored.deletionTime !== '' && Date.parse(stored.deletionTime) <= Date.now());
    // Vault's answer for a deleted/destroyed version: 404, data null, metadata present
    // (vault-plugin-secrets-kv path_data.go: "If the version has been destroyed return metadata with
    // a 404", logical.RespondWithStatusCode(resp, req, http.StatusNotFound), the body still wrapped).
    return { status: gone ? 404 : 200, body: envelope({ data: gone ? null : stored.data, metadata }) };
  }

  private metadata(secret: StoredSecret): Answer {
    const versions: Record<string, { created_time: string; deletion_time: string; destroyed: boolean }> = {};
    for (const [number, stored] of secret.versions)
      versions[String(number)] = {
        created_time: stored.createdTime,
        deletion_time: stored.deletionTime,
        destroyed: stored.destroyed,
      };
    return {
      status: 200,
      body: envelope({
        cas_required: false,
        created_time: secret.createdTime,
        current_version: secret.currentVersion,
        custom_metadata: null,
        delete_version_after: '0s',
        max_versions: 0,
        oldest_version: 0,
        updated_time: secret.updatedTime,
        versions,
      }),
    };
  }

  private login(kubernetes: KubernetesAuthStandIn, requestBody: unknown): Answer {
    const { role, jwt } = (requestBody ?? {}) as { role?: unknown; jwt?: unknown };
    if (typeof role !== 'string' || typeof jwt !== 'string') return error(400, 'missing role or jwt');
    if (role !== kubernetes.role) return error(400, `invalid role name "${role}"`);
    // The plugin validates the claims before asking Kubernetes about the token: a role with an
    // audience needs it in `aud` (vault-plugin-auth-kubernetes path_login.go, parseAndValidateJWT:
    // logical.CodedError(403, err.Error()) around hashicorp/cap jwt/jwt.go validateAudience), so
    // the automounted token (audience: the API server) gets 403 with cap's text, not a bare denial.
    if (!audiencesOf(jwt).includes(kubernetes.audience))
      return error(403, 'invalid audience (aud) claim: audience claim does not match any expected audience');
    if (jwt !== kubernetes.jwt) return denied();
    const clientToken = `hvs.${randomUUID().replace(/-/g, '')}`;
    const issued: IssuedToken = {
      accessor: randomUUID(),
      issuedAtMs: Date.now(),
      expiresAtMs: Date.now() + kubernetes.tokenTtlSeconds * 1000,
      revoked: false,
    };
    this.tokens.set(clientToken, issued);
    this.logins += 1;
    return { status: 200, body: { ...envelope(null), auth: this.authBlock(clientToken, issued, kubernetes) } };
  }

  private renewSelf(token: string | undefined): Answer {
    const kubernetes = this.options.kubernetes;
    if (!kubernetes || !this.tokenIsLive(token) || token === undefined) return denied();
    const issued = this.tokens.get(token) as IssuedToken;
    if (!kubernetes.renewable) return error(400, 'lease is not renewable');
    // A renewal never reaches past the token's max TTL: Vault caps the new lease at what is left
    // (hashicorp/vault sdk/framework/lease.go CalculateTTL, whole seconds), so the lease shrinks
    // until only a new login gives a token with time to live.
    const leftSeconds =
      kubernetes.maxTtlSeconds === undefined
        ? kubernetes.tokenTtlSeconds
        : Math.floor((issued.issuedAtMs + kubernetes.maxTtlSeconds * 1000 - Date.now()) / 1000);
    const leaseSeconds = Math.max(0, Math.min(kubernetes.tokenTtlSeconds, leftSeconds));
    issued.expiresAtMs = Math.min(
      Date.now() + leaseSeconds * 1000,
      kubernetes.maxTtlSeconds === undefined ? Infinity : issued.issuedAtMs + kubernetes.maxTtlSeconds * 1000,
    );
    this.renewals += 1;
    return {
      status: 200,
      body: { ...envelope(null), auth: { ...this.authBlock(token, issued, kubernetes), lease_duration: leaseSeconds } },
    };
  }

  /**
   * hashicorp/vault vault/token_store.go handleRevokeSelf revokes the calling token and returns no
   * response, which the HTTP layer sends as 204; the token is then unknown, so any use is 403.
   */
  private revokeSelf(token: string | undefined): Answer {
    if (!this.tokenIsLive(token) || token === undefined) return denied();
    (this.tokens.get(token) as IssuedToken).revoked = true;
    this.revocations += 1;
    return { status: 204, body: undefined };
  }

  private authBlock(clientToken: string, issued: IssuedToken, kubernetes: KubernetesAuthStandIn) {
    return {
      client_token: clientToken,
      accessor: issued.accessor,
      policies: ['default', 'provsec'],
      token_policies: ['default', 'provsec'],
      identity_policies: null,
      metadata: {
        role: kubernetes.role,
        service_account_name: 'provsec',
        service_account_namespace: 'provsec',
        service_account_uid: 'stand-in',
        service_account_secret_name: '',
      },
      lease_duration: kubernetes.tokenTtlSeconds,
      renewable: kubernetes.renewable,
      entity_id: randomUUID(),
      token_type: 'service',
      orphan: true,
      mfa_requirement: null,
      num_uses: 0,
    };
  }

  private tokenIsLive(token: string | undefined): boolean {
    const issued = token === undefined ? undefined : this.tokens.get(token);
    return issued !== undefined && !issued.revoked && Date.now() < issued.expiresAtMs;
  }
}

/** The JWT's `aud` claim as a list (a string or an array in Kubernetes tokens); unsigned parsing as the plugin does without public keys. */
function audiencesOf(jwt: string): string[] {
  try {
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { aud?: unknown };
    const aud = claims.aud;
    if (typeof aud === 'string') return [aud];
    return Array.isArray(aud) ? aud.filter((item): item is string => typeof item === 'string') : [];
  } catch {
    return [];
  }
}

/** Vault's standard response wrapper. */
function envelope(data: unknown) {
  return {
    request_id: randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data,
    wrap_info: null,
    warnings: null,
    auth: null,
  };
}

/**
 * A denial as Vault sends it: the error text is go-multierror's list format
 * ({"errors":["1 error occurred:\n\t* permission denied\n\n"]}), not the bare words.
 */
function denied(): Answer {
  return error(403, '1 error occurred:\n\t* permission denied\n\n');
}

function error(status: number, message: string): Answer {
  return { status, body: { errors: [message] } };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (chunks.length === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}
