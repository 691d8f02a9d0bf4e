import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The folder holding package.json, whether we run from src/ (tests) or dist/src/ (compiled), so
 * `sql/` and `config/` are found the same way in both.
 */
function findAppRoot(start: string): string {
  let dir = start;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${start}`);
    dir = parent;
  }
  return dir;
}

export const APP_ROOT = findAppRoot(__dirname);
export const SQL_DIR = join(APP_ROOT, 'sql');

/** The package's own name for its version and licence, read once so nothing else repeats them (e.g. the OpenAPI info). */
export const PACKAGE_INFO = readPackageInfo(join(APP_ROOT, 'package.json'));

function readPackageInfo(path: string): { version: string; license: string } {
  const { version, license } = JSON.parse(readFileSync(path, 'utf8')) as { version?: unknown; license?: unknown };
  if (typeof version !== 'string' || typeof license !== 'string') throw new Error(`${path}: no version or license`);
  return { version, license };
}
