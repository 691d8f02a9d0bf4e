/**
 * Checks real responses against the OpenAPI document the service serves: the operation must
 * document the status, the content type, every header it lists, and the body must validate
 * against the response schema (ajv, JSON Schema 2020-12, formats checked). Every API test response
 * goes through here (api-client.ts), so the document cannot drift from what the code sends.
 */
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { Response } from 'supertest';
import { openApiDocument } from '../../../src/http/openapi';

type JsonObject = Record<string, unknown>;

const DOCUMENT_ID = 'https://provsec.test/openapi.json';

// strict: false because the OpenAPI document's own members (paths, info...) are not schema keywords;
// the component schemas alone are compiled strictly in openapi.test.ts.
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(openApiDocument, DOCUMENT_ID);

const paths = openApiDocument.paths as Record<string, Record<string, JsonObject>>;

/** Which (METHOD template status) triples real responses have exercised in this test file. */
export const exercisedResponses = new Set<string>();

/** The documented path template a concrete path falls under, e.g. `/v1/device-groups/{id}`. */
export function templateFor(path: string): string | undefined {
  const withoutQuery = path.split('?')[0] ?? path;
  return Object.keys(paths).find((template) =>
    new RegExp(`^${template.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`).test(withoutQuery),
  );
}

function resolve(object: JsonObject): JsonObject {
  const ref = object.$ref;
  if (typeof ref !== 'string') return object;
  const [, section, name] = /^#\/components\/(\w+)\/(.+)$/.exec(ref) ?? [];
  const target = ((openApiDocument.components as Record<string, Record<string, JsonObject>>)[section ?? ''] ?? {})[
    name ?? ''
  ];
  if (!target) throw new Error(`unresolvable $ref ${ref}`);
  return target;
}

function schemaValidator(schema: JsonObject) {
  const ref = schema.$ref;
  if (typeof ref === 'string') {
    const validate = ajv.getSchema(`${DOCUMENT_ID}${ref}`);
    if (!validate) throw new Error(`no schema at ${ref}`);
    return validate;
  }
  return ajv.compile(schema);
}

/** The documented response object for this method, path and status (resolved), or why there is none. */
export function documentedResponse(method: string, path: string, status: number): JsonObject | string {
  const template = templateFor(path);
  if (!template) return `path ${path} is not documented`;
  const operation = paths[template]?.[method.toLowerCase()];
  if (!operation) return `${method} ${template} is not documented`;
  const response = (operation.responses as Record<string, JsonObject>)[String(status)];
  if (!response) return `${method} ${template} does not document status ${status}`;
  return resolve(response);
}

/**
 * Throws unless the response matches the document. Paths and methods the document does not name
 * (a 404 for an unknown route, a 405) are skipped: openapi.test.ts proves no real route is missing.
 */
export function expectDocumented(res: Response, method: string, path: string): void {
  const template = templateFor(path);
  if (!template || !paths[template]?.[method.toLowerCase()]) return;
  const response = documentedResponse(method, path, res.status);
  if (typeof response === 'string') throw new Error(`${response} (body: ${res.text.slice(0, 300)})`);
  exercisedResponses.add(`${method.toUpperCase()} ${template} ${res.status}`);

  for (const [name, headerObject] of Object.entries((response.headers ?? {}) as Record<string, JsonObject>)) {
    const header = resolve(headerObject);
    const value = res.headers[name.toLowerCase()];
    if (value === undefined) {
      if (header.required === true)
        throw new Error(`${method} ${template} ${res.status}: documented header ${name} is missing`);
      continue;
    }
    const validate = schemaValidator(header.schema as JsonObject);
    if (!validate(value))
      throw new Error(
        `${method} ${template} ${res.status}: header ${name}=${value} does not match: ${ajv.errorsText(validate.errors)}`,
      );
  }

  const content = response.content as Record<string, { schema: JsonObject }> | undefined;
  if (!content) {
    if (res.text !== '' && res.text !== undefined)
      throw new Error(`${method} ${template} ${res.status}: documented without a body but got one`);
    return;
  }
  const mediaType =
    String(res.headers['content-type'] ?? '')
      .split(';')[0]
      ?.trim() ?? '';
  const media = content[mediaType];
  if (!media)
    throw new Error(
      `${method} ${template} ${res.status}: content type ${mediaType} is not documented (${Object.keys(content).join(', ')})`,
    );
  const body: unknown = mediaType.endsWith('json') ? JSON.parse(res.text) : res.text;
  const validate = schemaValidator(media.schema);
  if (!validate(body))
    throw new Error(
      `${method} ${template} ${res.status}: body does not match the document: ${ajv.errorsText(validate.errors)}`,
    );
}
