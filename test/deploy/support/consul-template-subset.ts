/**
 * A minimal evaluator for the Go text/template constructs the Vault Agent template uses, with the
 * consul-template functions it calls, so a test can render the agent template with Vault-shaped
 * data without Vault, the agent or Go. It implements exactly these, and refuses anything else
 * rather than guessing:
 * - actions: text; {{ pipeline }}; {{ $v := pipeline }}; {{ with }}, {{ if }},
 *   {{ range $k, $v := }} each closed by {{ end }}; trim markers {{- and -}}.
 *   No else, comments, define/template/block, break/continue, or assignment with =.
 * - pipelines: commands joined by |; a command is a function call or a single operand; operands are
 *   "string" literals (escapes \" and \\ only), $var and $var.field..., .field..., ( pipeline ).
 * - functions: secret (one path), printf (%s %v %d %%), and, not, eq, toJSON, scratch.MapSet,
 *   scratch.Get.
 * - Go's semantics where they matter here: truthiness for with/if, map range in sorted key order,
 *   eq refusing values of different kinds, missingkey=error (the error-on-missing-key annotation),
 *   Vault's numbers as json.Number (a string kind: prints as digits, %d refuses it), toJSON as
 *   encoding/json (sorted keys, HTML-escaped strings).
 */

/** Vault's API client decodes numbers with UseNumber: templates see json.Number, a string kind. */
export class JsonNumber {
  constructor(readonly text: string) {}
}

export type SecretReader = (path: string) => { Data: Record<string, unknown> } | null;

export class TemplateSubsetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateSubsetError';
  }
}

type Token =
  | { type: 'string'; value: string }
  | { type: 'variable'; name: string; fields: string[] }
  | { type: 'field'; fields: string[] }
  | { type: 'identifier'; name: string }
  | { type: 'punct'; value: '(' | ')' | '|' | ':=' | ',' };
type Operand = Token | { type: 'group'; pipeline: Pipeline };
type Command = Operand[];
type Pipeline = Command[];
type Node =
  | { type: 'text'; text: string }
  | { type: 'output'; pipeline: Pipeline }
  | { type: 'declare'; name: string; pipeline: Pipeline }
  | { type: 'with' | 'if'; pipeline: Pipeline; body: Node[] }
  | { type: 'range'; keyName: string | undefined; valueName: string | undefined; pipeline: Pipeline; body: Node[] };

const fail = (message: string): never => {
  throw new TemplateSubsetError(message);
};

// --- lexing ------------------------------------------------------------------------------------

type Item = { type: 'text'; text: string } | { type: 'action'; tokens: Token[] };

function splitActions(template: string): Item[] {
  const items: Item[] = [];
  let position = 0;
  let trimNextText = false;
  while (position < template.length) {
    const open = template.indexOf('{{', position);
    let text = template.slice(position, open === -1 ? undefined : open);
    if (trimNextText) text = text.replace(/^\s+/, '');
    if (open === -1) {
      items.push({ type: 'text', text });
      break;
    }
    let bodyStart = open + 2;
    // Go's trim markers need white space inside them: "{{- " and " -}}".
    if (/^-\s/.test(template.slice(bodyStart, bodyStart + 2))) {
      text = text.replace(/\s+$/, '');
      bodyStart += 2;
    }
    items.push({ type: 'text', text });
    const { tokens, end } = lexAction(template, bodyStart);
    trimNextText = template.slice(end - 3, end) === '-}}';
    items.push({ type: 'action', tokens });
    position = end;
  }
  return items;
}

/** Lexes one action's body from `start`; returns its tokens and the index just past its `}}`. */
function lexAction(template: string, start: number): { tokens: Token[]; end: number } {
  const tokens: Token[] = [];
  let index = start;
  for (;;) {
    const rest = template.slice(index);
    if (/^\s-}}/.test(rest)) return { tokens, end: index + 4 };
    if (rest.startsWith('}}')) return { tokens, end: index + 2 };
    if (rest === '') fail('unclosed action');
    const char = rest[0]!;
    if (/\s/.test(char)) {
      index += 1;
    } else if (rest.startsWith('/*')) {
      fail('comments are not implemented');
    } else if (char === '"') {
      let value = '';
      let cursor = index + 1;
      for (;;) {
        const next = template[cursor];
        if (next === undefined) fail('unterminated string');
        if (next === '"') break;
        if (next === '\\') {
          const escaped = template[cursor + 1];
          if (escaped !== '"' && escaped !== '\\') fail(`string escape \\${escaped} is not implemented`);
          value += escaped;
          cursor += 2;
        } else {
          value += next;
          cursor += 1;
        }
      }
      tokens.push({ type: 'string', value });
      index = cursor + 1;
    } else if (rest.startsWith(':=')) {
      tokens.push({ type: 'punct', value: ':=' });
      index += 2;
    } else if ('()|,'.includes(char)) {
      tokens.push({ type: 'punct', value: char as '(' | ')' | '|' | ',' });
      index += 1;
    } else {
      const word =
        /^[$.A-Za-z_][$.A-Za-z0-9_]*/.exec(rest)?.[0] ?? fail(`unexpected ${JSON.stringify(char)} in an action`);
      index += word.length;
      if (word.startsWith('$')) {
        const [name, ...fields] = word.split('.');
        tokens.push({ type: 'variable', name: name!, fields });
      } else if (word.startsWith('.')) {
        tokens.push({ type: 'field', fields: word === '.' ? [] : word.slice(1).split('.') });
      } else {
        tokens.push({ type: 'identifier', name: word });
      }
    }
  }
}

// --- parsing -----------------------------------------------------------------------------------

function parsePipeline(tokens: Token[]): Pipeline {
  let cursor = 0;
  const pipeline: Pipeline = [];
  const readPipeline = (): Pipeline => {
    const commands: Pipeline = [[]];
    while (cursor < tokens.length) {
      const token = tokens[cursor]!;
      if (token.type === 'punct' && token.value === ')') return commands;
      cursor += 1;
      if (token.type === 'punct' && token.value === '|') commands.push([]);
      else if (token.type === 'punct' && token.value === '(') {
        commands[commands.length - 1]!.push({ type: 'group', pipeline: readPipeline() });
        if (tokens[cursor]?.type !== 'punct' || (tokens[cursor] as { value: string }).value !== ')') fail('missing )');
        cursor += 1;
      } else if (token.type === 'punct') fail(`unexpected ${token.value}`);
      else commands[commands.length - 1]!.push(token);
    }
    return commands;
  };
  pipeline.push(...readPipeline());
  if (cursor !== tokens.length) fail('unbalanced )');
  if (pipeline.some((command) => command.length === 0)) fail('empty command in a pipeline');
  return pipeline;
}

function parse(items: Item[]): Node[] {
  const root: Node[] = [];
  const open: { body: Node[] }[] = [{ body: root }];
  const current = (): Node[] => open[open.length - 1]!.body;
  for (const item of items) {
    if (item.type === 'text') {
      if (item.text !== '') current().push({ type: 'text', text: item.text });
      continue;
    }
    const [first, second, third, fourth] = item.tokens;
    const keyword = first?.type === 'identifier' ? first.name : undefined;
    if (keyword === 'end') {
      if (open.length === 1 || item.tokens.length !== 1) fail('unexpected end');
      open.pop();
    } else if (keyword === 'with' || keyword === 'if') {
      const node: Node = { type: keyword, pipeline: parsePipeline(item.tokens.slice(1)), body: [] };
      current().push(node);
      open.push(node);
    } else if (keyword === 'range') {
      let keyName: string | undefined;
      let valueName: string | undefined;
      let rest = item.tokens.slice(1);
      if (
        second?.type === 'variable' &&
        third?.type === 'punct' &&
        third.value === ',' &&
        fourth?.type === 'variable'
      ) {
        const assign = item.tokens[4];
        if (assign?.type !== 'punct' || assign.value !== ':=') fail('range $k, $v needs :=');
        [keyName, valueName, rest] = [second.name, fourth.name, item.tokens.slice(5)];
      } else if (second?.type === 'variable' && third?.type === 'punct' && third.value === ':=') {
        [valueName, rest] = [second.name, item.tokens.slice(3)];
      }
      const node: Node = { type: 'range', keyName, valueName, pipeline: parsePipeline(rest), body: [] };
      current().push(node);
      open.push(node);
    } else if (
      keyword === 'else' ||
      keyword === 'define' ||
      keyword === 'template' ||
      keyword === 'block' ||
      keyword === 'break' ||
      keyword === 'continue'
    ) {
      fail(`{{ ${keyword} }} is not implemented`);
    } else if (
      first?.type === 'variable' &&
      first.fields.length === 0 &&
      second?.type === 'punct' &&
      second.value === ':='
    ) {
      current().push({ type: 'declare', name: first.name, pipeline: parsePipeline(item.tokens.slice(2)) });
    } else {
      current().push({ type: 'output', pipeline: parsePipeline(item.tokens) });
    }
  }
  if (open.length !== 1) fail('missing end');
  return root;
}

// --- evaluation --------------------------------------------------------------------------------

function truth(value: unknown): boolean {
  if (value === null || value === undefined) return false;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0;
  if (typeof value === 'string') return value !== '';
  if (value instanceof JsonNumber) return value.text !== '';
  if (Array.isArray(value)) return value.length > 0;
  return Object.keys(value).length > 0;
}

/** Go's reflect kind, as far as eq and printf care. */
function kindOf(value: unknown): string {
  if (value instanceof JsonNumber || typeof value === 'string') return 'string';
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'number') return 'number';
  if (typeof value === 'boolean') return 'bool';
  return Array.isArray(value) ? 'slice' : 'map';
}

const stringOf = (value: unknown): string => (value instanceof JsonNumber ? value.text : (value as string));

function requireGoString(value: unknown, what: string): string {
  // A Go function with a string parameter refuses json.Number ("wrong type for value").
  if (typeof value !== 'string')
    fail(`${what}: expected string, got ${value instanceof JsonNumber ? 'json.Number' : kindOf(value)}`);
  return value as string;
}

function printValue(value: unknown): string {
  if (value === null || value === undefined) return '<no value>';
  if (value instanceof JsonNumber) return value.text;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
  return fail('printing a map or list into the file is not implemented (and would be a bug here)');
}

/** encoding/json: map keys sorted, <, > and & escaped, json.Number written as a number. */
export function goJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (value instanceof JsonNumber) return value.text;
  if (typeof value === 'string')
    return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
  if (typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(goJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, entry]) => `${goJson(key)}:${goJson(entry)}`).join(',')}}`;
}

function goPrintf(format: string, args: unknown[]): string {
  let argIndex = 0;
  return format.replace(/%([%svd])/g, (_match, verb: string) => {
    if (verb === '%') return '%';
    const arg = argIndex < args.length ? args[argIndex++] : fail('printf: missing argument');
    if (verb === 'd') {
      if (typeof arg !== 'number' || !Number.isInteger(arg))
        fail(`printf %d of a ${arg instanceof JsonNumber ? 'json.Number' : kindOf(arg)}`);
      return String(arg);
    }
    if (verb === 's' && kindOf(arg) !== 'string') fail(`printf %s of a ${kindOf(arg)}`);
    return printValue(arg);
  });
}

class Scope {
  private readonly variables = new Map<string, unknown>();
  constructor(private readonly parent: Scope | undefined) {}
  declare(name: string, value: unknown): void {
    this.variables.set(name, value);
  }
  lookup(name: string): unknown {
    if (this.variables.has(name)) return this.variables.get(name);
    return this.parent ? this.parent.lookup(name) : fail(`undefined variable ${name}`);
  }
}

class Evaluator {
  private readonly scratch = new Map<string, unknown>();
  constructor(private readonly readSecret: SecretReader) {}

  run(nodes: Node[], dot: unknown, scope: Scope): string {
    let output = '';
    for (const node of nodes) {
      if (node.type === 'text') output += node.text;
      else if (node.type === 'output') output += printValue(this.pipeline(node.pipeline, dot, scope));
      else if (node.type === 'declare') scope.declare(node.name, this.pipeline(node.pipeline, dot, scope));
      else if (node.type === 'with') {
        const value = this.pipeline(node.pipeline, dot, scope);
        if (truth(value)) output += this.run(node.body, value, new Scope(scope));
      } else if (node.type === 'if') {
        if (truth(this.pipeline(node.pipeline, dot, scope))) output += this.run(node.body, dot, new Scope(scope));
      } else if (node.type === 'range') {
        const collection = this.pipeline(node.pipeline, dot, scope);
        if (collection === null || collection === undefined || typeof collection !== 'object')
          fail(`range can't iterate over ${printValue(collection)}`);
        // Go ranges over a map in sorted key order ("10" before "2").
        const entries: [unknown, unknown][] = Array.isArray(collection)
          ? collection.map((element, index) => [index, element])
          : Object.keys(collection as object)
              .sort()
              .map((key) => [key, (collection as Record<string, unknown>)[key]]);
        for (const [key, element] of entries) {
          const inner = new Scope(scope);
          if (node.keyName !== undefined) inner.declare(node.keyName, key);
          if (node.valueName !== undefined) inner.declare(node.valueName, element);
          output += this.run(node.body, element, inner);
        }
      }
    }
    return output;
  }

  private pipeline(pipeline: Pipeline, dot: unknown, scope: Scope): unknown {
    let piped: { value: unknown } | undefined;
    for (const command of pipeline) {
      const [head, ...rest] = command;
      if (head?.type === 'identifier') {
        const args = rest.map((operand) => this.operand(operand, dot, scope));
        if (piped) args.push(piped.value);
        piped = { value: this.call(head.name, args) };
      } else {
        if (piped || command.length !== 1) fail('arguments given to a non-function');
        piped = { value: this.operand(head!, dot, scope) };
      }
    }
    return piped?.value;
  }

  private operand(operand: Operand, dot: unknown, scope: Scope): unknown {
    switch (operand.type) {
      case 'string':
        return operand.value;
      case 'group':
        return this.pipeline(operand.pipeline, dot, scope);
      case 'variable':
        return fields(scope.lookup(operand.name), operand.fields, operand.name);
      case 'field':
        return fields(dot, operand.fields, '');
      case 'identifier':
        return this.call(operand.name, []);
      default:
        return fail('unexpected token');
    }
  }

  private call(name: string, args: unknown[]): unknown {
    switch (name) {
      case 'secret':
        if (args.length !== 1) fail('secret with write data is not implemented');
        return this.readSecret(requireGoString(args[0], 'secret'));
      case 'printf':
        return goPrintf(requireGoString(args[0], 'printf format'), args.slice(1));
      case 'and':
        return args.find((arg) => !truth(arg)) ?? args[args.length - 1];
      case 'not':
        return !truth(args[0]);
      case 'eq': {
        const [left, right] = args;
        if (args.length !== 2 || kindOf(left) !== kindOf(right) || kindOf(left) === 'map' || kindOf(left) === 'slice')
          fail(`eq: incompatible types for comparison (${kindOf(left)}, ${kindOf(right)})`);
        return kindOf(left) === 'string' ? stringOf(left) === stringOf(right) : left === right;
      }
      case 'toJSON':
        return goJson(args[0]);
      case 'scratch.MapSet': {
        const key = requireGoString(args[0], 'scratch.MapSet key');
        const mapKey = requireGoString(args[1], 'scratch.MapSet map key');
        const map = (this.scratch.get(key) as Record<string, unknown> | undefined) ?? {};
        map[mapKey] = args[2];
        this.scratch.set(key, map);
        return '';
      }
      case 'scratch.Get':
        return this.scratch.get(requireGoString(args[0], 'scratch.Get key')) ?? null;
      default:
        return fail(`function ${name} is not implemented`);
    }
  }
}

/** Field access with missingkey=error: a missing key or a nil value on the way is an error. */
function fields(start: unknown, path: string[], origin: string): unknown {
  let value = start;
  let walked = origin;
  for (const field of path) {
    if (
      value === null ||
      value === undefined ||
      typeof value !== 'object' ||
      Array.isArray(value) ||
      value instanceof JsonNumber
    ) {
      fail(`can't evaluate field ${field} of ${walked || '.'} (${kindOf(value)})`);
    }
    if (!Object.prototype.hasOwnProperty.call(value, field))
      fail(`map has no entry for key "${field}" (at ${walked || '.'})`);
    value = (value as Record<string, unknown>)[field];
    walked += `.${field}`;
  }
  return value;
}

/** Renders `template` as the agent would, reading secrets through `readSecret`. */
export function renderAgentTemplate(template: string, readSecret: SecretReader): string {
  return new Evaluator(readSecret).run(parse(splitActions(template)), null, new Scope(undefined));
}
