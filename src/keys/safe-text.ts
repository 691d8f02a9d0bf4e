/**
 * Turning failures into text that is safe to log. The rule: messages are composed from our own
 * words and schema field names; data (file content, response bodies, parser output) never flows
 * in. `redactKeyLikeText` is a last line of defence on top of that rule, not a substitute for it.
 */
import type { z } from 'zod';

// 40+ hex or base64 characters: longer than any KEK id (32 hex after `kek_`), shorter than a
// 32-byte key written as hex (64) or base64 (44).
const KEY_LIKE_RUN = /[A-Za-z0-9+/]{40,}={0,2}/g;

export function redactKeyLikeText(text: string): string {
  return text.replace(KEY_LIKE_RUN, '[redacted]');
}

/**
 * Describes zod issues by code and path only. zod's own messages can quote the offending input
 * (unrecognized key names, record keys), and a key pasted in the wrong place would then be logged.
 */
export function describeIssues(
  issues: readonly z.ZodError['issues'][number][],
  knownFieldNames: readonly string[],
  limit = 3,
): string {
  const known = new Set(knownFieldNames);
  const described = issues.slice(0, limit).map((issue) => {
    const path = issue.path.map((segment) => safeSegment(segment, known)).join('.');
    return `${issue.code} at ${path === '' ? '(top level)' : path}`;
  });
  const more = issues.length > limit ? ` (+${issues.length - limit} more)` : '';
  return described.join('; ') + more;
}

function safeSegment(segment: PropertyKey, known: ReadonlySet<string>): string {
  if (typeof segment === 'number') return String(segment);
  if (typeof segment === 'string' && (known.has(segment) || /^[0-9]{1,10}$/.test(segment))) return segment;
  return '<field>';
}
