import type { EmbeddedPostgresHandle } from '../../src/db/embedded';
import { assertNoLeaksAcrossSuite } from './leak-sweep';

export default async function globalTeardown(): Promise<void> {
  const server = (globalThis as Record<string, unknown>).__PROVSEC_PG__ as EmbeddedPostgresHandle | undefined;
  try {
    // After every file: search all logs, tables and responses the suite left as evidence for the
    // bytes of every secret and key it stored. A finding fails the run.
    const summary = await assertNoLeaksAcrossSuite();
    if (summary) process.stdout.write(`\n${summary}\n`);
  } finally {
    await server?.stop();
  }
}
