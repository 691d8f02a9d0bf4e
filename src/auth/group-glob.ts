/**
 * Glob patterns over device-group ids, as used in a policy rule's `groups`: `*` is any run of
 * characters (possibly none), `?` exactly one, everything else itself. Matching is a two-pointer
 * scan (worst case pattern length x id length), not a RegExp: a pattern can neither inject regex
 * syntax nor cause catastrophic backtracking.
 */
import { PolicyError } from './errors';
import { MAX_GROUP_ID_CODE_POINTS } from '../crypto/binding-context';
import { needs } from '../crypto/needs';

/** The characters a device-group id may use, as the API accepts them (the envelope binds at most 128 of them). */
export const GROUP_ID_CHARACTERS = 'A-Z a-z 0-9 . _ : -';
export const GROUP_ID_PATTERN = new RegExp(`^[A-Za-z0-9._:-]{1,${MAX_GROUP_ID_CODE_POINTS}}$`);
const GROUP_GLOB_PATTERN = new RegExp(`^[A-Za-z0-9._:*?-]{1,${MAX_GROUP_ID_CODE_POINTS}}$`);

export type GroupMatcher = (groupId: string) => boolean;

/**
 * The groups a caller may see for one permission: every group (and events tied to none), or only
 * ids matching one of these globs.
 */
export type GroupScope =
  { readonly allGroups: true } | { readonly allGroups: false; readonly globs: readonly string[] };

/** A glob of only wildcards matches every valid id: a rule holding one covers all groups. */
export function coversEveryGroup(glob: string): boolean {
  return /^\*+$/.test(glob);
}

/**
 * The same glob as a Postgres LIKE pattern (default escape: backslash), so SQL filters exactly what
 * compileGroupGlob matches: `*` -> `%`, `?` -> `_`, a literal `_` escaped. The glob alphabet has no
 * `%` and no backslash, so nothing else needs escaping.
 */
export function groupGlobToSqlLike(glob: string): string {
  needs(isGroupGlob(glob), () => new PolicyError(`group pattern "${glob}" is not a group glob`));
  return glob.replace(/[*?_]/g, (char) => (char === '*' ? '%' : char === '?' ? '_' : '\\_'));
}

export function isGroupGlob(candidate: string): boolean {
  return GROUP_GLOB_PATTERN.test(candidate);
}

export function compileGroupGlob(glob: string): GroupMatcher {
  needs(
    isGroupGlob(glob),
    () =>
      new PolicyError(
        `group pattern "${glob}" may use only ${GROUP_ID_CHARACTERS} and the wildcards * ?, 1..${MAX_GROUP_ID_CODE_POINTS} characters`,
      ),
  );
  if (glob === '*') return (groupId) => GROUP_ID_PATTERN.test(groupId);
  // Invalid ids never match, so a caller's odd id cannot slip through a broad pattern.
  return (groupId) => GROUP_ID_PATTERN.test(groupId) && globMatches(glob, groupId);
}

function globMatches(glob: string, text: string): boolean {
  let globIndex = 0;
  let textIndex = 0;
  // Where to resume after the most recent '*' if the literal match after it fails.
  let starGlobIndex = -1;
  let starTextIndex = 0;
  while (textIndex < text.length) {
    const globChar = glob[globIndex];
    if (globChar === '*') {
      starGlobIndex = globIndex++;
      starTextIndex = textIndex;
    } else if (globChar !== undefined && (globChar === '?' || globChar === text[textIndex])) {
      globIndex++;
      textIndex++;
    } else if (starGlobIndex >= 0) {
      globIndex = starGlobIndex + 1;
      textIndex = ++starTextIndex;
    } else {
      return false;
    }
  }
  while (glob[globIndex] === '*') globIndex++;
  return globIndex === glob.length;
}
