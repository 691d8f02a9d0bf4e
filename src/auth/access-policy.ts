/**
 * Who may do what: rules from AUTH_POLICY_FILE, each granting permissions to a subject (exact, or
 * a prefix ending in `*`), optionally only for one issuer and only on groups matching globs.
 * Invariants: deny unless some rule grants; a rule with `issuer` never matches another issuer;
 * a policy that does not validate never loads (the service does not start); a read granted by a
 * rule with a recipientKey is never answered in plaintext.
 */
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { PolicyError } from './errors';
import { compileGroupGlob, coversEveryGroup, type GroupMatcher, type GroupScope } from './group-glob';
import type { Permission } from './permissions';
import { policyFileSchema, type PolicyRule } from './policy-schema';
import type { Principal } from './principal';
import { toRecipientKey, type RecipientKey } from './recipient-key';

export interface PolicyOptions {
  /** AUTH_REQUIRE_RECIPIENT_KEY: every rule granting provision-secret:read must carry a recipientKey. */
  readonly requireRecipientKey?: boolean;
}

interface CompiledRule {
  matchesSubject(subject: string): boolean;
  readonly issuer: string | undefined;
  readonly permissions: ReadonlySet<Permission>;
  /** Undefined: every group. */
  readonly groupMatchers: readonly GroupMatcher[] | undefined;
  /** The rule's `groups` as written; undefined when it has none or one covers every group. */
  readonly groupGlobs: readonly string[] | undefined;
  readonly recipientKey: RecipientKey | undefined;
}

export class AccessPolicy {
  private constructor(private readonly rules: readonly CompiledRule[]) {}

  /** Validates parsed JSON; throws PolicyError naming the first problem, e.g. `rules[0].permissions[1]: ...`. */
  static fromJson(json: unknown, options: PolicyOptions = {}): AccessPolicy {
    const result = policyFileSchema.safeParse(json);
    if (!result.success) throw new PolicyError(`access policy is invalid: ${describeIssues(result.error.issues)}`);
    const { rules } = result.data;
    if (options.requireRecipientKey === true) {
      const keyless = rules.findIndex(
        (rule) => rule.permissions.includes('provision-secret:read') && rule.recipientKey === undefined,
      );
      if (keyless >= 0)
        throw new PolicyError(
          `access policy is invalid: rules[${keyless}]: grants provision-secret:read without a recipientKey, which AUTH_REQUIRE_RECIPIENT_KEY=true forbids`,
        );
    }
    // The audit record names the key by kid alone, so one kid must mean one key.
    const keysByKid = new Map<string, string>();
    for (const [index, rule] of rules.entries()) {
      if (rule.recipientKey === undefined) continue;
      const material = JSON.stringify([
        rule.recipientKey.kty,
        rule.recipientKey.crv,
        rule.recipientKey.x,
        rule.recipientKey.y,
      ]);
      const seen = keysByKid.get(rule.recipientKey.kid);
      if (seen !== undefined && seen !== material)
        throw new PolicyError(
          `access policy is invalid: rules[${index}].recipientKey: kid ${JSON.stringify(rule.recipientKey.kid)} already names a different key`,
        );
      keysByKid.set(rule.recipientKey.kid, material);
    }
    return new AccessPolicy(rules.map(compileRule));
  }

  static async load(path: string, options: PolicyOptions = {}): Promise<AccessPolicy> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      throw new PolicyError(
        `access policy ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new PolicyError(`access policy ${path} is not valid JSON (${(error as Error).message})`);
    }
    try {
      return AccessPolicy.fromJson(json, options);
    } catch (error) {
      if (error instanceof PolicyError)
        throw new PolicyError(error.message.replace('access policy', `access policy ${path}`));
      throw error;
    }
  }

  get ruleCount(): number {
    return this.rules.length;
  }

  /**
   * With a group id: some rule for this principal grants `permission` on that group. Without one
   * (a collection-level call such as listing): some rule grants `permission` on any group; filter
   * the results with groupFilter.
   */
  can(principal: Principal, permission: Permission, groupId?: string): boolean {
    return this.rulesGranting(principal, permission).some(
      (rule) => groupId === undefined || coversGroup(rule, groupId),
    );
  }

  /** A predicate for the groups this principal may exercise `permission` on (always false if none). */
  groupFilter(principal: Principal, permission: Permission): (groupId: string) => boolean {
    const granting = this.rulesGranting(principal, permission);
    return (groupId) => granting.some((rule) => coversGroup(rule, groupId));
  }

  /**
   * The groups `permission` reaches for this principal, for filtering in SQL: all groups when any
   * granting rule has no `groups` (or a glob of only `*`), else the union of the rules' globs
   * (empty: none). Things tied to no group belong to the all-groups scope only.
   */
  groupScope(principal: Principal, permission: Permission): GroupScope {
    const granting = this.rulesGranting(principal, permission);
    if (granting.some((rule) => rule.groupGlobs === undefined)) return { allGroups: true };
    return { allGroups: false, globs: [...new Set(granting.flatMap((rule) => rule.groupGlobs ?? []))] };
  }

  /**
   * The keys a secret read by this principal on this group must be encrypted to: the recipientKeys
   * of the rules granting provision-secret:read there, in file order, without repeats. Empty means
   * plaintext JSON. A keyed rule wins over a keyless one that also matches: the encrypted path is
   * never downgraded by a broader rule.
   */
  recipientKeysFor(principal: Principal, groupId: string): RecipientKey[] {
    const keys: RecipientKey[] = [];
    for (const rule of this.rulesGranting(principal, 'provision-secret:read')) {
      if (rule.recipientKey === undefined || !coversGroup(rule, groupId)) continue;
      if (!keys.some((key) => key.kid === rule.recipientKey?.kid)) keys.push(rule.recipientKey);
    }
    return keys;
  }

  private rulesGranting(principal: Principal, permission: Permission): CompiledRule[] {
    return this.rules.filter(
      (rule) =>
        rule.permissions.has(permission) &&
        (rule.issuer === undefined || rule.issuer === principal.issuer) &&
        rule.matchesSubject(principal.subject),
    );
  }
}

function coversGroup(rule: CompiledRule, groupId: string): boolean {
  return rule.groupMatchers === undefined
    ? compiledAllGroups(groupId)
    : rule.groupMatchers.some((matches) => matches(groupId));
}

const compiledAllGroups = compileGroupGlob('*');

function compileRule(rule: PolicyRule): CompiledRule {
  const { subject } = rule;
  const prefix = subject.endsWith('*') ? subject.slice(0, -1) : undefined;
  return {
    matchesSubject:
      prefix === undefined ? (candidate) => candidate === subject : (candidate) => candidate.startsWith(prefix),
    issuer: rule.issuer,
    permissions: new Set(rule.permissions),
    groupMatchers: rule.groups?.map(compileGroupGlob),
    groupGlobs: rule.groups === undefined || rule.groups.some(coversEveryGroup) ? undefined : rule.groups,
    recipientKey: rule.recipientKey === undefined ? undefined : toRecipientKey(rule.recipientKey),
  };
}

function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .slice(0, 3)
    .map((issue) => `${formatPath(issue.path)}: ${issue.message}`)
    .join('; ');
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return 'policy';
  return path
    .map((segment, index) =>
      typeof segment === 'number' ? `[${segment}]` : `${index === 0 ? '' : '.'}${String(segment)}`,
    )
    .join('');
}
