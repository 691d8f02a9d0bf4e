/**
 * Finds a repeated member name in a JSON object at any depth. JSON.parse silently keeps the last
 * one, while another parser may keep the first: a header like {"alg":"RS256","alg":"none"} means
 * different things to different readers, so a token that carries one is refused (RFC 8725 3.1,
 * RFC 7515 section 5.2: a JOSE header with duplicate names must be rejected or the last taken).
 * No well-kept library offers only this check; it is a linear scan over text JSON.parse already
 * accepted, so it needs no error handling of its own.
 */

/** True if some object in `validJsonText` names a member twice (compared after unescaping). */
export function hasDuplicateMemberNames(validJsonText: string): boolean {
  // One entry per open container: the names seen so far in an object, or null for an array.
  const openContainers: Array<Set<string> | null> = [];
  let index = 0;
  while (index < validJsonText.length) {
    const char = validJsonText[index];
    if (char === '"') {
      const end = endOfString(validJsonText, index);
      let next = end;
      while (next < validJsonText.length && ' \t\r\n'.includes(validJsonText[next] ?? '')) next++;
      const names = openContainers[openContainers.length - 1];
      // In valid JSON a string followed by ':' is always a member name of the innermost object.
      if (validJsonText[next] === ':' && names) {
        const name = JSON.parse(validJsonText.slice(index, end)) as string;
        if (names.has(name)) return true;
        names.add(name);
      }
      index = end;
      continue;
    }
    if (char === '{') openContainers.push(new Set());
    else if (char === '[') openContainers.push(null);
    else if (char === '}' || char === ']') openContainers.pop();
    index++;
  }
  return false;
}

/** Index just past the closing quote of the string that opens at `start`. */
function endOfString(text: string, start: number): number {
  let index = start + 1;
  while (index < text.length && text[index] !== '"') {
    index += text[index] === '\\' ? 2 : 1;
  }
  return index + 1;
}
