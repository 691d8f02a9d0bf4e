/** The AUTH_POLICY_FILE format, validated with zod. Unknown members are errors: a typo must not silently widen or narrow access. */
import type { JWK } from 'jose';
import { z } from 'zod';
import { isGroupGlob } from './group-glob';
import { PERMISSIONS } from './permissions';
import { recipientKeyProblem } from './recipient-key';

const MAX_SUBJECT_LENGTH = 512;

interface IssueSeen {
  readonly code?: string;
  readonly input?: unknown;
  readonly keys?: readonly string[];
}

/** zod error option: "is required" when absent, what it must be when of the wrong type, names unknown members; else zod's own text. */
const mustBe = (what: string) => (issue: IssueSeen) => {
  if (issue.code === 'unrecognized_keys')
    return `has unknown member${issue.keys?.length === 1 ? '' : 's'} ${issue.keys?.map((key) => JSON.stringify(key)).join(', ')}`;
  if (issue.code !== 'invalid_type') return undefined;
  return issue.input === undefined ? 'is required' : `must be ${what}`;
};

const subjectPattern = z
  .string({ error: mustBe('a string') })
  .min(1, 'must not be empty')
  .max(MAX_SUBJECT_LENGTH, `must be at most ${MAX_SUBJECT_LENGTH} characters`)
  // '*' means "prefix" only at the end; anywhere else a reader would expect a glob we do not implement.
  .refine(
    (subject) => !subject.slice(0, -1).includes('*'),
    'may contain "*" only as its last character (prefix match)',
  );

const permission = z.enum(PERMISSIONS, {
  error: (issue) => `must be one of ${PERMISSIONS.join(', ')}, not ${String(JSON.stringify(issue.input)).slice(0, 80)}`,
});

const groupPattern = z
  .string({ error: mustBe('a string') })
  .refine(isGroupGlob, 'must be a group id glob: A-Z a-z 0-9 . _ : - and the wildcards * ?, 1..128 characters');

/** A public JWK, checked by recipientKeyProblem (one clear message per way it can be wrong). */
const recipientKey = z.unknown().transform((value, context) => {
  const problem = recipientKeyProblem(value);
  if (problem === undefined) return value as JWK & { kid: string };
  context.addIssue({ code: 'custom', message: problem });
  return z.NEVER;
});

const rule = z
  .strictObject(
    {
      subject: subjectPattern,
      issuer: z
        .string({ error: mustBe('a string') })
        .min(1, 'must not be empty')
        .optional(),
      permissions: z
        .array(permission, { error: mustBe('an array of permissions') })
        .min(1, 'must list at least one permission'),
      groups: z
        .array(groupPattern, { error: mustBe('an array of group patterns') })
        .min(1, 'must list at least one group pattern (leave "groups" out to cover all groups)')
        .optional(),
      recipientKey: recipientKey.optional(),
    },
    { error: mustBe('an object') },
  )
  // A bare "*" with no issuer would hand the permissions to every subject of every trusted issuer.
  .refine((candidate) => candidate.subject !== '*' || candidate.issuer !== undefined, {
    message: 'subject "*" matches everyone and needs an "issuer" to say whose everyone',
    path: ['subject'],
  })
  // A key on a rule that cannot read secrets would suggest protection that is not there.
  .refine(
    (candidate) => candidate.recipientKey === undefined || candidate.permissions.includes('provision-secret:read'),
    {
      message: 'only a rule that grants provision-secret:read may carry a recipientKey',
      path: ['recipientKey'],
    },
  );

export const policyFileSchema = z.strictObject(
  {
    rules: z
      .array(rule, { error: mustBe('an array of rules') })
      .min(1, 'must hold at least one rule (no rule means nobody can call the service)'),
  },
  { error: mustBe('a JSON object with a "rules" array') },
);

export type PolicyFile = z.infer<typeof policyFileSchema>;
export type PolicyRule = PolicyFile['rules'][number];
