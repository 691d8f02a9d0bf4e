/**
 * `npm run token -- --sub NAME [--ttl SECONDS]`: prints a short-lived bearer token from the dev
 * signing key (src/auth/dev-signer.ts), and nothing else on stdout, so `TOKEN=$(npm run -s token -- --sub x)`
 * works. Refused when NODE_ENV=production: dev keys must never mint credentials there.
 */
import { parseArgs } from 'node:util';
import { ensureDevSigner } from '../src/auth/dev-signer';
import { DevModeRefusedError } from '../src/auth/errors';
import { ConfigError, loadConfig, type Env } from '../src/config';

const USAGE = 'usage: npm run token -- --sub NAME [--ttl SECONDS] (default ttl 600)';
const DEFAULT_TTL_SECONDS = 600;

export interface TokenCommandOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** The whole command; returns the exit code (0 ok, 1 refused or failed, 2 usage or configuration). */
export async function runTokenCommand(argv: readonly string[], env: Env, output: TokenCommandOutput): Promise<number> {
  // Checked before anything else, so the refusal is the message even when production config is incomplete.
  if (env.NODE_ENV === 'production') {
    output.stderr(`provsec token: ${new DevModeRefusedError('npm run token').message}\n`);
    return 1;
  }
  let subject: string;
  let ttlSeconds: number;
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: { sub: { type: 'string' }, ttl: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      output.stderr(`${USAGE}\n`);
      return 0;
    }
    if (values.sub === undefined || values.sub === '') throw new Error('--sub is required');
    subject = values.sub;
    const ttlText = values.ttl ?? String(DEFAULT_TTL_SECONDS);
    if (!/^\d+$/.test(ttlText)) throw new Error('--ttl must be a whole number of seconds');
    ttlSeconds = Number(ttlText);
  } catch (error) {
    output.stderr(`provsec token: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }

  let config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      output.stderr(`provsec token: configuration error: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (config.auth.mode === 'configured') {
    output.stderr(
      `provsec token: warning: the service trusts AUTH_ISSUER=${config.auth.issuer}, not this dev signer; it will refuse this token\n`,
    );
  }
  try {
    const signer = await ensureDevSigner(config.stateDir, {
      production: config.production,
      audience: config.auth.audience,
      maxTokenLifetimeSeconds: config.auth.maxTokenLifetimeSeconds,
    });
    output.stdout(`${await signer.sign(subject, ttlSeconds)}\n`);
    return 0;
  } catch (error) {
    output.stderr(`provsec token: ${(error as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) {
  runTokenCommand(process.argv.slice(2), process.env, {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`provsec token: ${(error as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
