import type { z } from 'zod';
import { problems } from './problem';

/**
 * Parses input with a schema or throws a 400 naming the field and the rule it broke. The offending
 * value is never echoed: it may be a secret sent in the wrong field.
 */
export function parseOr400<S extends z.ZodType>(
  schema: S,
  input: unknown,
  where: 'body' | 'query' | 'path',
): z.output<S> {
  const result = schema.safeParse(input ?? (where === 'body' ? undefined : {}));
  if (result.success) return result.data;
  const issues = result.error.issues.slice(0, 5).map((issue) => {
    const field = issue.path.length ? issue.path.join('.') : where;
    if (issue.code === 'unrecognized_keys')
      return `${where}: unknown field(s) ${issue.keys.map((key) => JSON.stringify(key.slice(0, 64))).join(', ')}`;
    if (issue.code === 'invalid_type' && issue.path.length === 0) return `${where}: must be a JSON object`;
    return `${field}: ${issue.message}`;
  });
  throw problems.badRequest(`Invalid ${where}: ${issues.join('; ')}.`, { invalidParams: issues });
}
