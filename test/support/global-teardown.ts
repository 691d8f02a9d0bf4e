import type { EmbeddedPostgresHandle } from '../../src/db/embedded';

export default async function globalTeardown(): Promise<void> {
  const server = (globalThis as Record<string, unknown>).__PROVSEC_PG__ as EmbeddedPostgresHandle | undefined;
  await server?.stop();
}
