/**
 * GET /openapi.json: the OpenAPI 3.1 description of every route. Request and response schemas are
 * generated from the zod schemas that validate requests (src/http/schemas.ts), so code and document
 * cannot drift; test/api/openapi.test.ts checks that every registered route is documented and that
 * real responses validate against these schemas.
 */
import { Router } from 'express';
import { z } from 'zod';
import { PACKAGE_INFO } from '../app-root';
import type { KeyStatusEntry } from '../service/key-status';
import { MAX_SECRET_LENGTH_BYTES } from '../crypto';
import { KEY_SOURCE_KINDS, KEY_SOURCE_STATES } from '../keys/key-source';
import { JSON_BODY_LIMIT_BYTES } from './error-handler';
import { PROBLEM_CONTENT_TYPE } from './problem';
import {
  auditEventPageSchema,
  auditEventSchema,
  auditEventsQuery,
  createDeviceGroupBody,
  deviceGroupMetadataSchema,
  deviceGroupPageSchema,
  GROUP_ID_RULE,
  groupIdSchema,
  kekIdSchema,
  listDeviceGroupsQuery,
  problemSchema,
  provisionSecretResponseSchema,
  rotateSecretBody,
} from './schemas';
import {
  GROUP_HEADER_PARAMETER,
  JWE_MEDIA_TYPE,
  RECIPIENT_THUMBPRINT_HEADER,
  SECRET_JWE_ALG,
  SECRET_JWE_ENC,
  THUMBPRINT_PATTERN,
  VERSION_HEADER_PARAMETER,
} from '../protocol/secret-answer';

/** A JSON Schema (2020-12) object. Structure is checked against the official OpenAPI 3.1 meta-schema in the tests. */
type Schema = { properties?: Record<string, unknown>; required?: string[]; [keyword: string]: unknown };
/** Any other OpenAPI object. */
type OpenApiObject = Record<string, unknown>;
type JsonSchemaIo = 'input' | 'output';

const JSON_CONTENT = 'application/json';
const schemaRef = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const responseRef = (name: string) => ({ $ref: `#/components/responses/${name}` });
const headerRef = (name: string) => ({ $ref: `#/components/headers/${name}` });

/** GET /v1/keys (service/key-status.ts keyStatus()); typed against KeyStatusEntry so a renamed field fails to compile. */
const keyStatusEntrySchema: z.ZodType<KeyStatusEntry> = z.strictObject({
  kekId: kekIdSchema,
  versionLabel: z.number().int().nullable(),
  current: z.boolean(),
  available: z.boolean().describe('false: rows under this KEK cannot be opened until the key source has it again'),
  rows: z.number().int().min(0),
});
const keyStatusSchema = z.strictObject({
  source: z.strictObject({
    kind: z.enum(KEY_SOURCE_KINDS),
    state: z.enum(KEY_SOURCE_STATES),
    loadedAt: z.iso.datetime({ offset: true }).nullable(),
    lastError: z.string().nullable(),
  }),
  currentKekId: z.string().nullable().describe('The KEK that seals now: the newest active version'),
  pendingKek: z
    .strictObject({
      kekId: kekIdSchema,
      kekVersion: z.number().int().nullable(),
      activatesAt: z.iso.datetime({ offset: true }),
    })
    .nullable()
    .describe(
      'A newer KEK version the key source holds that does not seal yet (KEK_ACTIVATION_DELAY_SECONDS), and when it will',
    ),
  keys: z.array(keyStatusEntrySchema),
  rowsNotUnderCurrent: z.number().int().min(0),
  rowsUnderUnavailableKeks: z.number().int().min(0),
});
const healthSchema = z.strictObject({ status: z.literal('alive') });
const readinessCheckSchema = z.strictObject({ ok: z.boolean(), detail: z.string().optional() });
const readinessSchema = z.strictObject({
  status: z.literal('ready'),
  checks: z.record(z.string(), readinessCheckSchema),
});

/** Drops `$schema`/`$id`: inside an OpenAPI 3.1 document the dialect is already 2020-12. */
function withoutMetaKeywords(schema: object): Schema {
  const { $schema: _dialect, $id: _id, ...rest } = schema as Record<string, unknown>;
  return rest;
}

function jsonSchemaOf(schema: z.ZodType, io: JsonSchemaIo): Schema {
  return withoutMetaKeywords(z.toJSONSchema(schema, { target: 'draft-2020-12', io }));
}

/** Named components; a schema that uses another named one gets a $ref to it. */
function componentSchemas(named: Record<string, z.ZodType>, io: JsonSchemaIo): Record<string, Schema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(named)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    io,
    uri: (id) => `#/components/schemas/${id}`,
  });
  return Object.fromEntries(Object.entries(schemas).map(([id, schema]) => [id, withoutMetaKeywords(schema)]));
}

/** Zod refinements (byte length, valid Unicode) have no JSON Schema form: say them in words. */
function describeSecretField(body: Schema): Schema {
  const properties = (body.properties ?? {}) as Record<string, Schema>;
  const secret = properties.provisionSecret;
  if (secret) {
    properties.provisionSecret = {
      ...secret,
      // Code points, an upper bound only: the real limit is the UTF-8 byte length.
      maxLength: MAX_SECRET_LENGTH_BYTES,
      description: `The provision secret: 1-${MAX_SECRET_LENGTH_BYTES} bytes of UTF-8 (lone surrogates are refused). Stored envelope-encrypted; never echoed.`,
    };
  }
  return body;
}

/** A query schema's (parsed, hence `output`) properties as OpenAPI query parameters. */
function queryParameters(query: z.ZodType, descriptions: Record<string, string>): OpenApiObject[] {
  const schema = jsonSchemaOf(query, 'output');
  return Object.entries((schema.properties ?? {}) as Record<string, Schema>).map(([name, property]) => ({
    name,
    in: 'query',
    required: schema.required?.includes(name) ?? false,
    description: descriptions[name],
    schema: property,
  }));
}

function problemResponse(description: string, headers: Record<string, OpenApiObject> = {}): OpenApiObject {
  return {
    description,
    headers: { 'X-Request-Id': headerRef('RequestId'), ...headers },
    content: { [PROBLEM_CONTENT_TYPE]: { schema: schemaRef('Problem') } },
  };
}

function jsonResponse(description: string, schema: object, headers: Record<string, OpenApiObject> = {}): OpenApiObject {
  return {
    description,
    headers: { 'X-Request-Id': headerRef('RequestId'), ...headers },
    content: { [JSON_CONTENT]: { schema } },
  };
}

/** The error responses every authenticated route can give, plus the route's own. */
function v1Errors(...specific: Array<'400' | '404' | '409' | '413' | '415' | '429'>): OpenApiObject {
  const names: Record<string, string> = {
    '400': 'BadRequest',
    '404': 'NotFound',
    '409': 'Conflict',
    '413': 'PayloadTooLarge',
    '415': 'UnsupportedMediaType',
    '429': 'TooManyRequests',
  };
  const responses: OpenApiObject = {};
  for (const status of specific) responses[status] = responseRef(names[status] as string);
  return {
    ...responses,
    '401': responseRef('Unauthorized'),
    '403': responseRef('Forbidden'),
    '500': responseRef('InternalError'),
    '503': responseRef('Unavailable'),
  };
}

function jsonBody(name: string): OpenApiObject {
  return { required: true, content: { [JSON_CONTENT]: { schema: schemaRef(name) } } };
}

const groupIdParameter: OpenApiObject = {
  name: 'id',
  in: 'path',
  required: true,
  description: `Device-group id: ${GROUP_ID_RULE} (anything else is a 400, not a 404).`,
  schema: jsonSchemaOf(groupIdSchema, 'input'),
};

const requestSchemas = componentSchemas(
  { CreateDeviceGroupRequest: createDeviceGroupBody, RotateSecretRequest: rotateSecretBody },
  'input',
);

export const openApiDocument: OpenApiObject = {
  openapi: '3.1.0',
  info: {
    title: 'provsec',
    version: PACKAGE_INFO.version,
    // package.json's licence, e.g. npm's `UNLICENSED` (no licence granted), which is no SPDX `identifier`:
    // the url is npm's definition of the field and of that word.
    license: { name: PACKAGE_INFO.license, url: 'https://docs.npmjs.com/cli/v10/configuring-npm/package-json#license' },
    description:
      'Stores IoT device-group provision secrets envelope-encrypted and serves them only to authorized certificate workers. ' +
      'Every /v1 call needs `Authorization: Bearer <JWT>` (RS256, ES256 or EdDSA, from the configured issuer, audience `provsec`, lifetime at most AUTH_MAX_TOKEN_LIFETIME). ' +
      'Permissions come from the access policy (AUTH_POLICY_FILE); every create, secret read, rotation, deletion and denial is audited. Errors are RFC 9457 problem+json.',
  },
  // Relative to where this document is served: each deployment has its own host (and TLS), so no absolute URL is true for all.
  servers: [{ url: '/', description: 'The provsec instance serving this document' }],
  security: [{ bearerAuth: [] }],
  tags: [
    { name: 'device-groups', description: 'Device-group metadata (never carries a secret)' },
    { name: 'provision-secrets', description: 'The one route that returns a secret, and rotation' },
    { name: 'audit', description: 'Audit records' },
    { name: 'keys', description: 'Key-encryption keys: ids and counts, never key material' },
    { name: 'operations', description: 'Probes, metrics and this document (no token)' },
  ],
  paths: {
    '/v1/device-groups': {
      post: {
        tags: ['device-groups'],
        operationId: 'createDeviceGroup',
        summary: 'Create a device group and store its provision secret',
        description:
          'Requires `device-groups:write` on the group. Creating an id that exists is a 409, unless the request carries the same provision secret ' +
          '(a client retry): then 200 with the existing metadata and nothing changes. The secrets are compared in constant time (both SHA-256 digested, then timingSafeEqual).',
        requestBody: jsonBody('CreateDeviceGroupRequest'),
        responses: {
          '201': jsonResponse('Created', schemaRef('DeviceGroupMetadata'), { Location: headerRef('Location') }),
          '200': jsonResponse(
            'A retry with the same secret: the existing group, unchanged',
            schemaRef('DeviceGroupMetadata'),
          ),
          ...v1Errors('400', '409', '413', '415'),
        },
      },
      get: {
        tags: ['device-groups'],
        operationId: 'listDeviceGroups',
        summary: 'A page of device-group metadata, in id order',
        description:
          'Requires `device-groups:read`; the page shows only the groups the caller may read. Pass `nextCursor` as `after` for the next page.',
        parameters: queryParameters(listDeviceGroupsQuery, {
          limit: 'Page size (default 100).',
          after: 'Cursor: `nextCursor` of the previous page.',
        }),
        responses: { '200': jsonResponse('A page of metadata', schemaRef('DeviceGroupPage')), ...v1Errors('400') },
      },
    },
    '/v1/device-groups/{id}': {
      parameters: [groupIdParameter],
      get: {
        tags: ['device-groups'],
        operationId: 'getDeviceGroup',
        summary: 'Device-group metadata (never the secret)',
        description: 'Requires `device-groups:read` on the group.',
        responses: { '200': jsonResponse('Metadata', schemaRef('DeviceGroupMetadata')), ...v1Errors('400', '404') },
      },
      delete: {
        tags: ['device-groups'],
        operationId: 'deleteDeviceGroup',
        summary: 'Delete a device group with its stored secret and wrapped data key',
        description: 'Requires `device-groups:write` on the group.',
        responses: {
          '204': { description: 'Deleted', headers: { 'X-Request-Id': headerRef('RequestId') } },
          ...v1Errors('400', '404'),
        },
      },
    },
    '/v1/device-groups/{id}/provision-secret': {
      parameters: [groupIdParameter],
      get: {
        tags: ['provision-secrets'],
        operationId: 'readProvisionSecret',
        summary: 'Read the provision secret (the only response that carries one)',
        description:
          'Requires `provision-secret:read` on the group; rate-limited per identity (SECRET_READ_RATE_LIMIT_PER_MINUTE). The audit record is committed before the secret is sent; ' +
          'if it cannot be, or the stored envelope cannot be opened, the answer is an error without the secret.\n\n' +
          `When a rule granting the read carries a \`recipientKey\`, the answer is \`${JWE_MEDIA_TYPE}\`: a compact JWE (\`alg\` ${SECRET_JWE_ALG}, \`enc\` ${SECRET_JWE_ENC}) ` +
          `encrypted to that key, whose protected header carries \`kid\`, \`${GROUP_HEADER_PARAMETER}\` (the group id) and \`${VERSION_HEADER_PARAMETER}\` (the secret version), ` +
          'and whose plaintext is the JSON answer. The Accept header does not change this: a keyed rule is never answered in plaintext. Otherwise the answer is the JSON.',
        parameters: [
          {
            name: RECIPIENT_THUMBPRINT_HEADER,
            in: 'header',
            required: false,
            description:
              'Which of your registered keys to encrypt to (RFC 7638 SHA-256 thumbprint of its public JWK); needed while two are registered. Default: the first in policy order. A key not registered for you is a 403.',
            schema: { type: 'string', pattern: THUMBPRINT_PATTERN.source },
          },
        ],
        responses: {
          '200': {
            description:
              'SECRET-BEARING: the provision secret, as plaintext JSON or as a JWE to the registered key. Never cache or log this response.',
            headers: {
              'X-Request-Id': headerRef('RequestId'),
              'Cache-Control': headerRef('NoStore'),
              Pragma: headerRef('PragmaNoCache'),
            },
            content: {
              [JSON_CONTENT]: { schema: schemaRef('ProvisionSecret') },
              [JWE_MEDIA_TYPE]: {
                schema: {
                  type: 'string',
                  description: 'Compact JWE: five base64url parts joined by dots (the encrypted key is not empty)',
                  pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$',
                },
              },
            },
          },
          ...v1Errors('400', '404', '429'),
          '500': problemResponse(
            'Server fault, or the stored envelope cannot be opened (tampered, moved between rows, KEK missing); audited with outcome error',
          ),
        },
      },
      put: {
        tags: ['provision-secrets'],
        operationId: 'rotateProvisionSecret',
        summary: 'Store a reissued provision secret: secretVersion + 1, fresh data key',
        description:
          'Requires `device-groups:write` on the group. A concurrent rotation or deletion wins; the loser gets 409.',
        requestBody: jsonBody('RotateSecretRequest'),
        responses: {
          '200': jsonResponse('Rotated: the new metadata', schemaRef('DeviceGroupMetadata')),
          ...v1Errors('400', '404', '409', '413', '415'),
        },
      },
    },
    '/v1/audit-events': {
      get: {
        tags: ['audit'],
        operationId: 'listAuditEvents',
        summary: 'Audit records, oldest first',
        description:
          'Requires `audit:read`. A rule limited to `groups` sees only those groups’ events; events tied to no group (such as refused tokens) need `audit:read` on all groups. Pass `nextCursor` as `after` for the next page.',
        parameters: queryParameters(auditEventsQuery, {
          groupId: 'Only events about this group (403 when outside the caller’s groups).',
          actor: 'Only events whose actor subject (`sub`) is exactly this.',
          since: 'Only events at or after this time (RFC 3339 with offset).',
          limit: 'Page size (default 100).',
          after: 'Cursor: `nextCursor` of the previous page.',
        }),
        responses: { '200': jsonResponse('A page of audit events', schemaRef('AuditEventPage')), ...v1Errors('400') },
      },
    },
    '/v1/keys': {
      get: {
        tags: ['keys'],
        operationId: 'keyStatus',
        summary: 'KEKs the key source holds, the current one, and stored rows per KEK',
        description: 'Requires `keys:admin`. KEK ids are fingerprints, never key material.',
        responses: {
          '200': jsonResponse('Key status', schemaRef('KeyStatus'), { 'Cache-Control': headerRef('NoStore') }),
          ...v1Errors(),
        },
      },
    },
    '/healthz': {
      get: {
        tags: ['operations'],
        operationId: 'liveness',
        summary: 'Liveness',
        security: [],
        responses: { '200': jsonResponse('The process is alive', schemaRef('Health')) },
      },
    },
    '/readyz': {
      get: {
        tags: ['operations'],
        operationId: 'readiness',
        summary: 'Readiness: database, migrations, keyring',
        security: [],
        responses: {
          '200': jsonResponse('Ready', schemaRef('Readiness'), { 'Cache-Control': headerRef('NoStore') }),
          '503': problemResponse('Not ready; the problem lists each check under `checks`'),
        },
      },
    },
    '/metrics': {
      get: {
        tags: ['operations'],
        operationId: 'metrics',
        summary: 'Prometheus metrics (text exposition format)',
        security: [],
        responses: { '200': { description: 'Metrics', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    '/openapi.json': {
      get: {
        tags: ['operations'],
        operationId: 'openApiDocument',
        summary: 'This document',
        security: [],
        responses: {
          '200': { description: 'OpenAPI 3.1 document', content: { [JSON_CONTENT]: { schema: { type: 'object' } } } },
        },
      },
    },
  },
  components: {
    securitySchemes: {
      bearerAuth: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description:
          'A short-lived JWT from a trusted issuer, e.g. a Kubernetes projected service-account token with audience `provsec`.',
      },
    },
    schemas: {
      CreateDeviceGroupRequest: describeSecretField(requestSchemas.CreateDeviceGroupRequest as Schema),
      RotateSecretRequest: describeSecretField(requestSchemas.RotateSecretRequest as Schema),
      ...componentSchemas(
        {
          DeviceGroupMetadata: deviceGroupMetadataSchema,
          DeviceGroupPage: deviceGroupPageSchema,
          ProvisionSecret: provisionSecretResponseSchema,
          AuditEvent: auditEventSchema,
          AuditEventPage: auditEventPageSchema,
          Problem: problemSchema,
          KeyStatus: keyStatusSchema,
          Health: healthSchema,
          Readiness: readinessSchema,
        },
        'output',
      ),
    },
    // Every header listed is sent on every response that lists it (the tests check each one).
    headers: {
      RequestId: {
        required: true,
        description: 'The request id (the caller’s X-Request-Id if well formed); also in logs and audit records.',
        schema: { type: 'string' },
      },
      Location: {
        required: true,
        description: 'The new group’s URL',
        schema: { type: 'string', pattern: '^/v1/device-groups/' },
      },
      NoStore: {
        required: true,
        description: 'Always `no-store`: the body must not be cached',
        schema: { type: 'string', const: 'no-store' },
      },
      PragmaNoCache: {
        required: true,
        description: 'Always `no-cache` (for HTTP/1.0 caches)',
        schema: { type: 'string', const: 'no-cache' },
      },
      WwwAuthenticate: {
        required: true,
        description: 'Bearer challenge (RFC 6750)',
        schema: { type: 'string', pattern: '^Bearer ' },
      },
      RetryAfter: {
        required: true,
        description: 'Seconds to wait before retrying',
        schema: { type: 'string', pattern: '^[0-9]+$' },
      },
    },
    responses: {
      BadRequest: problemResponse(
        'Invalid body, path or query; `invalidParams` names each field and rule (never the value)',
      ),
      Unauthorized: problemResponse('Missing or invalid bearer token (generic reason; the specific one is logged)', {
        'WWW-Authenticate': headerRef('WwwAuthenticate'),
      }),
      Forbidden: problemResponse('The token does not grant this permission on this group; audited'),
      NotFound: problemResponse('No device group with this id'),
      Conflict: problemResponse('The id holds a different secret, or a concurrent change won'),
      PayloadTooLarge: problemResponse(`The body exceeds ${JSON_BODY_LIMIT_BYTES / 1024} KiB`),
      UnsupportedMediaType: problemResponse('The body is not application/json'),
      TooManyRequests: problemResponse('Secret read rate limit reached for this identity; audited', {
        'Retry-After': headerRef('RetryAfter'),
      }),
      InternalError: problemResponse('Server fault; details are logged, never sent'),
      Unavailable: problemResponse('Database, key source or token key set temporarily unavailable', {
        'Retry-After': headerRef('RetryAfter'),
      }),
    },
  },
};

export function openApiRoutes(): Router {
  const router = Router();
  router.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument);
  });
  return router;
}
