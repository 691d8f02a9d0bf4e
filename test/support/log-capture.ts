import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log/logger';

/** A real pino logger whose JSON lines are kept in memory, so tests can search them. */
export function capturedLogger(level = 'info'): { logger: Logger; lines: string[]; text: () => string } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: createLogger({ level }, stream), lines, text: () => lines.join('') };
}
