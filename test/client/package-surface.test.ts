/** provsec/client is a package entry point of its own: exported, with a bin, and free of server modules. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { APP_ROOT } from '../../src/app-root';

const CLIENT_DIR = join(APP_ROOT, 'src', 'client');
const packageJson = JSON.parse(readFileSync(join(APP_ROOT, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
  exports: Record<string, { types: string; default: string }>;
  scripts: Record<string, string>;
};

test('the client imports only node, jose, itself and the wire contract: never a server module', () => {
  const imports = readdirSync(CLIENT_DIR)
    .filter((name) => name.endsWith('.ts'))
    .flatMap((name) =>
      [...readFileSync(join(CLIENT_DIR, name), 'utf8').matchAll(/from '([^']+)'/g)].map(
        (match) => `${name}: ${match[1]}`,
      ),
    );
  expect(imports.length).toBeGreaterThan(10);
  const allowed = /: (node:[a-z/]+|jose|\.\/[a-z-]+|\.\.\/protocol\/secret-answer)$/;
  expect(imports.filter((line) => !allowed.test(line))).toEqual([]);
});

test('the wire contract imports nothing', () => {
  expect(readFileSync(join(APP_ROOT, 'src', 'protocol', 'secret-answer.ts'), 'utf8')).not.toMatch(/\bimport\b/);
});

test('package.json exports provsec/client and the provsec-secret bin from the compiled client', () => {
  expect(packageJson.exports['./client']).toEqual({
    types: './dist/src/client/index.d.ts',
    default: './dist/src/client/index.js',
  });
  expect(packageJson.bin['provsec-secret']).toBe('dist/src/client/bin.js');
  expect(packageJson.scripts.secret).toMatch(/node dist\/src\/client\/bin\.js$/);
  expect(readFileSync(join(CLIENT_DIR, 'bin.ts'), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
});
