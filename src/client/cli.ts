/**
 * The `provsec-secret` command: `get <groupId>` prints the provision secret alone (no newline) or
 * writes it to --output FILE (0600); `keygen --kid KID --output FILE` makes a worker key. Exit
 * codes are EXIT_CODES; every message goes to stderr and names no secret and no token.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT_CODES, SecretClientError, usageError } from './errors';
import { generateRecipientKey } from './keygen';
import { createSecretClient, DEFAULT_TIMEOUT_MS, DEFAULT_URL } from './secret-client';

export interface CliIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

export const USAGE = `usage:
  provsec-secret get <groupId> [--url URL] [--token-file FILE] [--ca-file FILE]
                               [--recipient-key-file FILE] [--timeout SECONDS] [--output FILE]
  provsec-secret keygen --kid KID --output FILE

get prints the group's provision secret alone on stdout (no newline), or writes it to --output FILE
(mode 0600). Flags override PROVSEC_URL (default ${DEFAULT_URL}), PROVSEC_TOKEN_FILE,
PROVSEC_CA_FILE and PROVSEC_RECIPIENT_KEY_FILE. --timeout bounds the whole read, retries included
(default ${DEFAULT_TIMEOUT_MS / 1000} s).
keygen writes a new P-256 private JWK to FILE (0600, never overwriting) and prints the public JWK
to register as the worker's recipientKey.
exit codes: 0 ok, 2 usage or configuration, 3 refused (401/403), 4 not found, 5 unavailable,
6 an answer that does not decrypt or does not match the request.
`;

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const [command, ...rest] = argv;
    if (command === 'get') await get(rest, io);
    else if (command === 'keygen') await keygen(rest, io);
    else if (command === '--help' || command === '-h' || command === 'help') io.stdout.write(USAGE);
    else
      throw usageError(command === undefined ? 'a command is required' : `unknown command ${JSON.stringify(command)}`);
    return EXIT_CODES.ok;
  } catch (error) {
    if (error instanceof SecretClientError) {
      io.stderr.write(`provsec-secret: ${error.message}\n`);
      if (error.kind === 'usage' && /command|argument|option|required/.test(error.message)) io.stderr.write(USAGE);
      return error.exitCode;
    }
    // Not one of ours: say what kind it was, never its message (it might quote input).
    io.stderr.write(`provsec-secret: unexpected ${(error as Error | undefined)?.name ?? 'error'}\n`);
    return EXIT_CODES.unavailable;
  }
}

function parse(args: readonly string[], options: Record<string, { type: 'string' }>) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw usageError(`bad arguments: ${(error as Error).message}`);
  }
}

async function get(args: readonly string[], io: CliIo): Promise<void> {
  const string = { type: 'string' } as const;
  const { values, positionals } = parse(args, {
    url: string,
    'token-file': string,
    'ca-file': string,
    'recipient-key-file': string,
    timeout: string,
    output: string,
  });
  if (positionals.length !== 1) throw usageError('get takes exactly one argument: the group id');
  const env = (name: string) => (io.env[name] === '' ? undefined : io.env[name]);
  const tokenFile = values['token-file'] ?? env('PROVSEC_TOKEN_FILE');
  if (tokenFile === undefined) throw usageError('a token file is required: PROVSEC_TOKEN_FILE or --token-file');
  const client = await createSecretClient({
    url: values.url ?? env('PROVSEC_URL') ?? DEFAULT_URL,
    tokenFile,
    caFile: values['ca-file'] ?? env('PROVSEC_CA_FILE'),
    recipientKeyFile: values['recipient-key-file'] ?? env('PROVSEC_RECIPIENT_KEY_FILE'),
    timeoutMs: parseTimeoutMs(values.timeout),
    onRetry: (notice) => io.stderr.write(`provsec-secret: ${notice}\n`),
  });
  const { provisionSecret } = await client.readProvisionSecret(positionals[0] ?? '');
  if (values.output === undefined) io.stdout.write(provisionSecret);
  else await writePrivateFile(values.output, provisionSecret);
}

function parseTimeoutMs(text: string | undefined): number {
  if (text === undefined) return DEFAULT_TIMEOUT_MS;
  const seconds = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || seconds <= 0 || seconds > 3600)
    throw usageError('--timeout must be a number of seconds between 0 and 3600');
  return Math.round(seconds * 1000);
}

/**
 * Writes to a new 0600 file beside the target, then renames it over: a reader never sees a partial
 * secret, and no moment exists where the file has looser permissions.
 */
async function writePrivateFile(path: string, content: string): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let file;
  try {
    file = await open(temporary, 'wx', 0o600);
  } catch (error) {
    throw usageError(`cannot write beside ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    await file.writeFile(content);
    await file.close();
    await rename(temporary, path);
  } catch (error) {
    await file.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw usageError(`cannot write ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

async function keygen(args: readonly string[], io: CliIo): Promise<void> {
  const { values, positionals } = parse(args, { kid: { type: 'string' }, output: { type: 'string' } });
  if (positionals.length > 0) throw usageError('keygen takes no positional argument');
  if (values.kid === undefined || values.output === undefined)
    throw usageError('keygen requires --kid KID and --output FILE');
  const publicJwk = await generateRecipientKey(values.kid, values.output);
  io.stdout.write(`${JSON.stringify(publicJwk)}\n`);
  io.stderr.write(
    `provsec-secret: private key written to ${values.output} (mode 0600); register the public JWK above as the worker's "recipientKey"\n`,
  );
}
