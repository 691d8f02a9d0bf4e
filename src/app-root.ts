import { existsSync } from 'node:fs';
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
