/**
 * Supertest against a running test service, as a named identity, with every response checked
 * against the OpenAPI document (openapi-validator.ts).
 */
// Typed asymmetric matchers (@types/jest gives them as `any`).
import { expect } from '@jest/globals';
import request, { type Response, type Test } from 'supertest';
import type { z } from 'zod';
import type {
  auditEventPageSchema,
  auditEventSchema,
  deviceGroupMetadataSchema,
  deviceGroupPageSchema,
  provisionSecretResponseSchema,
} from '../../../src/http/schemas';
import type { TestService } from '../../support/test-service';
import { expectDocumented } from './openapi-validator';

export const PROBLEM_TYPE_BASE = 'https://provsec.dev/problems/';

/** Well-known identities of TEST_POLICY (test/support/test-service.ts). */
export const MANAGEMENT = 'management-api';
export const AUDITOR = 'auditor';
export const KEY_ADMIN = 'key-admin';
export const CERT_WORKER = 'system:serviceaccount:provisioning:cert-worker';
export const FLEET_A_WORKER = 'fleet-a-worker';

type Method = 'get' | 'post' | 'put' | 'delete' | 'patch';

export interface CallOptions {
  /** Subject to mint a valid token for; null sends no Authorization header. */
  readonly as?: string | null;
  /** An exact bearer token (overrides `as`). */
  readonly token?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface ApiClient {
  get(path: string, options?: CallOptions): Promise<Response>;
  delete(path: string, options?: CallOptions): Promise<Response>;
  post(path: string, body: unknown, options?: CallOptions): Promise<Response>;
  put(path: string, body: unknown, options?: CallOptions): Promise<Response>;
  /**
   * A request built by hand (raw bodies, odd headers), authenticated as in `options`, still
   * checked against the document.
   */
  send(method: Method, path: string, build: (test: Test) => Test, options?: CallOptions): Promise<Response>;
  tokenFor(subject: string): Promise<string>;
}

export function apiFor(svc: TestService, defaultSubject: string | null = MANAGEMENT): ApiClient {
  const tokens = new Map<string, Promise<string>>();
  const tokenFor = (subject: string): Promise<string> => {
    let token = tokens.get(subject);
    if (!token) {
      token = svc.token(subject);
      tokens.set(subject, token);
    }
    return token;
  };

  async function call(
    method: Method,
    path: string,
    options: CallOptions,
    build: (test: Test) => Test,
  ): Promise<Response> {
    let test = request(svc.url)[method](path);
    const subject = options.as === undefined ? defaultSubject : options.as;
    const token = options.token ?? (subject === null ? undefined : await tokenFor(subject));
    if (token !== undefined) test = test.set('Authorization', `Bearer ${token}`);
    for (const [name, value] of Object.entries(options.headers ?? {})) test = test.set(name, value);
    const res = await build(test);
    expectDocumented(res, method, path);
    return res;
  }
  const withBody = (body: unknown) => (test: Test) => test.send(body as object);
  const asIs = (test: Test) => test;

  return {
    get: (path, options = {}) => call('get', path, options, asIs),
    delete: (path, options = {}) => call('delete', path, options, asIs),
    post: (path, body, options = {}) => call('post', path, options, withBody(body)),
    put: (path, body, options = {}) => call('put', path, options, withBody(body)),
    send: (method, path, build, options = {}) => call(method, path, options, build),
    tokenFor,
  };
}

/** JSON response bodies, typed by the schemas the OpenAPI document is generated from. */
export type DeviceGroupJson = z.infer<typeof deviceGroupMetadataSchema>;
export type DeviceGroupPageJson = z.infer<typeof deviceGroupPageSchema>;
export type ProvisionSecretJson = z.infer<typeof provisionSecretResponseSchema>;
export type AuditEventJson = z.infer<typeof auditEventSchema>;
export type AuditEventPageJson = z.infer<typeof auditEventPageSchema>;

/**
 * A response's parsed JSON body as the type the caller expects. Typing only: every ApiClient
 * response has already been checked against the OpenAPI document (expectDocumented).
 */
export function bodyOf<T>(res: Response): T {
  return res.body as T;
}

/** A problem+json response of this status whose `type` is one of ours. */
export function expectProblem(res: Response, status: number, kind?: string): void {
  expect({ status: res.status, contentType: res.headers['content-type'] }).toEqual({
    status,
    contentType: expect.stringMatching(/^application\/problem\+json/),
  });
  const body = JSON.parse(res.text) as Record<string, unknown>;
  expect(body).toMatchObject({ status, type: expect.stringMatching(new RegExp(`^${PROBLEM_TYPE_BASE}`)) });
  if (kind !== undefined) expect(body.type).toBe(PROBLEM_TYPE_BASE + kind);
}

/** The one 401 every token problem gets: a Bearer challenge and a body that says nothing specific. */
export function expectGenericUnauthorized(res: Response): void {
  expectProblem(res, 401, 'unauthorized');
  expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
  const { requestId: _requestId, ...rest } = JSON.parse(res.text) as Record<string, unknown>;
  expect(rest).toEqual({
    type: `${PROBLEM_TYPE_BASE}unauthorized`,
    title: 'Unauthorized',
    status: 401,
    detail: 'A valid bearer token is required.',
  });
}

export function groupPath(id: string, suffix = ''): string {
  return `/v1/device-groups/${encodeURIComponent(id)}${suffix}`;
}
