/**
 * Request and response shapes of the /v1 API. The same zod schemas validate requests and feed the
 * OpenAPI document (src/http/openapi.ts), so the two cannot drift apart.
 */
import { z } from 'zod';
import { AUDIT_OUTCOMES } from '../audit/audit-log';
import { GROUP_ID_CHARACTERS, GROUP_ID_PATTERN } from '../auth/group-glob';
import { MAX_GROUP_ID_CODE_POINTS, MAX_SECRET_LENGTH_BYTES } from '../crypto';
import { KEK_ID_PATTERN } from '../crypto/kek';

/** The rule a device-group id follows, in words (for validation messages and the OpenAPI document). */
export const GROUP_ID_RULE = `1-${MAX_GROUP_ID_CODE_POINTS} characters of ${GROUP_ID_CHARACTERS}`;
export const groupIdSchema = z.string().regex(GROUP_ID_PATTERN, `must be ${GROUP_ID_RULE}`);
export const kekIdSchema = z.string().regex(KEK_ID_PATTERN);

// Postgres text cannot hold U+0000: a NUL in a value bound for a text column would fail the query (a 500).
const hasNoNul = (value: string) => !value.includes('\u0000');

const provisionSecretSchema = z
  .string()
  .min(1, 'must not be empty')
  .refine(
    (value) => Buffer.byteLength(value, 'utf8') <= MAX_SECRET_LENGTH_BYTES,
    `must be at most ${MAX_SECRET_LENGTH_BYTES} bytes of UTF-8`,
  )
  // Lone surrogates cannot be encoded as UTF-8; storing them would silently change the secret.
  .refine((value) => Buffer.from(value, 'utf8').toString('utf8') === value, 'must be valid Unicode text');

export const createDeviceGroupBody = z.strictObject({
  id: groupIdSchema,
  name: z
    .string()
    .max(256, 'must be at most 256 characters')
    .refine(hasNoNul, 'must not contain NUL characters')
    .nullable()
    .optional(),
  provisionSecret: provisionSecretSchema,
});

export const rotateSecretBody = z.strictObject({ provisionSecret: provisionSecretSchema });

const limitSchema = z
  .string()
  .regex(/^\d{1,4}$/, 'must be a whole number from 1 to 1000')
  .transform(Number)
  .pipe(z.number().int().min(1, 'must be at least 1').max(1000, 'must be at most 1000'))
  .optional();

export const listDeviceGroupsQuery = z.strictObject({ limit: limitSchema, after: groupIdSchema.optional() });

export const auditEventsQuery = z.strictObject({
  groupId: groupIdSchema.optional(),
  actor: z.string().min(1).max(512).refine(hasNoNul, 'must not contain NUL characters').optional(),
  since: z.iso.datetime({ offset: true, message: 'must be an RFC 3339 date-time' }).optional(),
  limit: limitSchema,
  after: z
    .string()
    .regex(/^\d{1,18}$/, 'must be a cursor from a previous page')
    .optional(),
});

export const deviceGroupMetadataSchema = z.strictObject({
  id: groupIdSchema,
  name: z.string().nullable(),
  secretVersion: z.number().int().min(1),
  kekId: kekIdSchema,
  createdAt: z.iso.datetime({ offset: true }),
  updatedAt: z.iso.datetime({ offset: true }),
});

export const deviceGroupPageSchema = z.strictObject({
  items: z.array(deviceGroupMetadataSchema),
  nextCursor: z.string().nullable(),
});

export const provisionSecretResponseSchema = z.strictObject({
  id: groupIdSchema,
  provisionSecret: z.string(),
  secretVersion: z.number().int().min(1),
});

export const auditEventSchema = z.strictObject({
  id: z.string(),
  occurredAt: z.iso.datetime({ offset: true }),
  requestId: z.string(),
  actorIssuer: z.string().nullable(),
  actorSubject: z.string().nullable(),
  action: z.string(),
  groupId: z.string().nullable(),
  secretVersion: z.number().int().nullable(),
  kekId: z.string().nullable(),
  outcome: z.enum(AUDIT_OUTCOMES),
  reason: z.string().nullable(),
  clientAddress: z.string().nullable(),
  secretDelivery: z
    .enum(['json', 'jwe'])
    .nullable()
    .describe('On a provision-secret.read that released the secret: plaintext JSON, or a JWE to recipientKid'),
  recipientKid: z.string().nullable().describe('The kid of the worker key a JWE answer was encrypted to'),
  /** Repeated identical denials are one record with their count (1 for every other record). */
  occurrences: z.number().int().min(1),
  /** The last of the repeated denials a record stands for; null for a single event. */
  lastOccurredAt: z.iso.datetime({ offset: true }).nullable(),
});

export const auditEventPageSchema = z.strictObject({
  items: z.array(auditEventSchema),
  nextCursor: z.string().nullable(),
});

export const problemSchema = z.looseObject({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  requestId: z.string().optional(),
});
