/**
 * Policy checks on the Dockerfile and .dockerignore, read with a Dockerfile parser and Docker's
 * own ignore-file rules (@balena/dockerignore). No Docker engine is needed: these are the
 * properties a build would have, checked on the instructions that produce it.
 */
import ignore from '@balena/dockerignore';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from './support/manifests';

const dockerfile = DockerfileParser.parse(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'));
const dockerignore = ignore().add(readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8'));

interface Stage {
  readonly name: string | undefined;
  readonly image: string;
  readonly instructions: Instruction[];
}

/** The instructions of each stage, from its FROM to the next. */
const stages: Stage[] = (() => {
  const result: Stage[] = [];
  for (const instruction of dockerfile.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const [image = '', , name] = instruction.getArguments().map((argument) => argument.getValue());
      result.push({ name, image, instructions: [] });
    } else {
      result.at(-1)?.instructions.push(instruction);
    }
  }
  return result;
})();
const runtime = stages.at(-1)!;
const argumentsOf = (instruction: Instruction): string[] =>
  instruction.getArguments().map((argument) => argument.getValue());
/** COPY's flags (--from=, --chown=, ...) as "name=value"; the parser keeps them apart from arguments. */
const flagsOf = (instruction: Instruction): string[] =>
  (
    (instruction as unknown as { getFlags?: () => { getName(): string; getValue(): string | null }[] }).getFlags?.() ??
    []
  ).map((flag) => `--${flag.getName()}=${flag.getValue() ?? ''}`);
const ofKind = (stage: Stage, keyword: string): Instruction[] =>
  stage.instructions.filter((instruction) => instruction.getKeyword() === keyword);
const runCommands = (stage: Stage): string[] =>
  ofKind(stage, 'RUN').map((instruction) => instruction.getArgumentsContent() ?? '');
/** COPY sources that come from the build context (no --from). */
const contextSources = stages.flatMap((stage) =>
  ofKind(stage, 'COPY')
    .filter((instruction) => !flagsOf(instruction).some((flag) => flag.startsWith('--from=')))
    .flatMap((instruction) => argumentsOf(instruction).slice(0, -1)),
);
const globalAndStageVariables = dockerfile
  .getInstructions()
  .filter((instruction) => ['ENV', 'ARG'].includes(instruction.getKeyword()));

describe('the Dockerfile', () => {
  test('builds on Node 22 by default, one NODE_MAJOR for every stage, within package.json engines', () => {
    const nodeMajorArg = dockerfile
      .getInstructions()
      .find(
        (instruction) => instruction.getKeyword() === 'ARG' && argumentsOf(instruction)[0]?.startsWith('NODE_MAJOR='),
      );
    expect(nodeMajorArg && argumentsOf(nodeMajorArg)).toEqual(['NODE_MAJOR=22']);
    expect(stages.map((stage) => stage.image)).toEqual([
      'node:${NODE_MAJOR}-bookworm-slim',
      'node:${NODE_MAJOR}-bookworm-slim',
      'gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot',
    ]);
    const { engines } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      engines: { node: string };
    };
    expect(engines.node).toBe('>=20.19 <21 || >=22.12');
  });

  test('is multi-stage: builds with the toolchain and ships a separate runtime stage', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(stages.map((stage) => stage.name)).toEqual(expect.arrayContaining(['build', 'runtime']));
    expect(ofKind(runtime, 'COPY').some((instruction) => flagsOf(instruction).includes('--from=build'))).toBe(true);
  });

  test('installs dependencies exactly from the lock file (npm ci), never npm install', () => {
    const allRuns = stages.flatMap(runCommands).join('\n');
    expect(allRuns).toMatch(/\bnpm ci\b/);
    expect(allRuns).not.toMatch(/\bnpm (install|i|add)\b/);
    expect(contextSources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json']));
  });

  test('the runtime gets production dependencies only', () => {
    const prodDepsStage = stages.find((stage) =>
      runCommands(stage).some((command) => /npm ci\b.*--omit=dev/.test(command)),
    );
    expect(prodDepsStage?.name).toBeDefined();
    const nodeModulesCopy = ofKind(runtime, 'COPY').find((instruction) =>
      argumentsOf(instruction).some((argument) => argument.endsWith('/node_modules')),
    );
    expect(flagsOf(nodeModulesCopy!)).toContain(`--from=${prodDepsStage!.name}`);
  });

  test('the runtime base is distroless Node.js: no shell, no package manager, no build tools', () => {
    expect(runtime.image).toMatch(
      /^gcr\.io\/distroless\/nodejs\$\{NODE_MAJOR\}-debian12:nonroot$|^gcr\.io\/distroless\/nodejs\d+-debian12(:nonroot)?(@sha256:[0-9a-f]{64})?$/,
    );
    // With no shell there is nothing to RUN; and nothing may bring npm back in.
    expect(ofKind(runtime, 'RUN')).toEqual([]);
    const copiedPaths = ofKind(runtime, 'COPY').flatMap(argumentsOf).join(' ');
    expect(copiedPaths).not.toMatch(/\bnpm\b|\/usr\/local\/bin|\/usr\/local\/lib\/node_modules/);
  });

  test('runs node on the compiled entry point as a numeric non-root user', () => {
    const users = ofKind(runtime, 'USER').map((instruction) => instruction.getArgumentsContent());
    expect(users).toHaveLength(1);
    const [uid, gid] = users[0]!.split(':');
    expect(uid).toMatch(/^[1-9]\d*$/);
    expect(gid).toMatch(/^[1-9]\d*$/);
    const entrypoint = JSON.parse(ofKind(runtime, 'ENTRYPOINT')[0]!.getArgumentsContent()!) as string[];
    const command = JSON.parse(ofKind(runtime, 'CMD')[0]!.getArgumentsContent()!) as string[];
    expect([...entrypoint, ...command]).toEqual(['/nodejs/bin/node', 'dist/src/main.js']);
  });

  test('sets NODE_ENV=production in the image', () => {
    const runtimeEnv = ofKind(runtime, 'ENV').flatMap((instruction) => argumentsOf(instruction));
    expect(runtimeEnv).toContain('NODE_ENV=production');
  });

  test('works on a read-only root filesystem: app files stay root-owned, nothing is declared writable', () => {
    expect(ofKind(runtime, 'VOLUME')).toEqual([]);
    expect(
      ofKind(runtime, 'COPY')
        .flatMap(flagsOf)
        .filter((flag) => flag.startsWith('--chown') || flag.startsWith('--chmod')),
    ).toEqual([]);
    expect(ofKind(runtime, 'WORKDIR').map((instruction) => instruction.getArgumentsContent())).toEqual(['/app']);
  });

  test('the runtime has the migrations next to dist/ and the package.json the app root is found by', () => {
    const runtimeSources = ofKind(runtime, 'COPY').flatMap(argumentsOf);
    expect(runtimeSources).toEqual(expect.arrayContaining(['sql', './sql', 'package.json']));
  });

  test('puts no secret in any layer: no secret-looking ARG or ENV, no key or env file copied, no token in a RUN', () => {
    const names = globalAndStageVariables.flatMap((instruction) =>
      argumentsOf(instruction).map((argument) => argument.split('=')[0]!),
    );
    expect(
      names.filter((name) => /SECRET|PASSW|TOKEN|CREDENTIAL|PRIVATE|API_KEY|DATABASE_URL|_KEY$|^KEY|AUTH/i.test(name)),
    ).toEqual([]);
    const values = globalAndStageVariables.flatMap(argumentsOf).join(' ');
    expect(values).not.toMatch(/:\/\/[^\s/]*:[^\s/]*@/);
    expect(contextSources.filter((source) => /\.env|\.pem$|\.key$|\.npmrc|id_rsa|\.p12$/.test(source))).toEqual([]);
    expect(dockerfile.getInstructions().filter((instruction) => instruction.getKeyword() === 'ADD')).toEqual([]);
    expect(stages.flatMap(runCommands).join('\n')).not.toMatch(/_authToken|NPM_TOKEN|GITHUB_TOKEN/);
  });

  test('has no HEALTHCHECK: Kubernetes probes /healthz and /readyz instead (and there is no curl to run)', () => {
    expect(dockerfile.getInstructions().filter((instruction) => instruction.getKeyword() === 'HEALTHCHECK')).toEqual(
      [],
    );
  });
});

describe('the .dockerignore', () => {
  test.each([
    'node_modules/express/index.js',
    'dist/src/main.js',
    'test/deploy/dockerfile.test.ts',
    '.provsec/dev-kek.json',
    '.git/config',
    'server.pem',
    'keys/kek.key',
    'src/keys/stray.pem',
    '.env',
    '.env.production',
    'sql/.env',
    'bench/results/run.json',
    'coverage/lcov.info',
    'k8s/base/deployment.yaml',
  ])('keeps %s out of the build context', (path) => {
    expect(dockerignore.ignores(path)).toBe(true);
  });

  test('lets in every path the Dockerfile copies from the context', () => {
    expect(contextSources.length).toBeGreaterThan(4);
    expect(contextSources.filter((source) => dockerignore.ignores(source.replace(/\/$/, '')))).toEqual([]);
    expect(dockerignore.ignores('src/main.ts')).toBe(false);
    expect(dockerignore.ignores('scripts/migrate.ts')).toBe(false);
    expect(dockerignore.ignores('sql/001_ota_groups.sql')).toBe(false);
  });

  test('the real build context of this checkout holds only what the build reads', () => {
    const walk = (folder: string): string[] =>
      readdirSync(folder).flatMap((entry) => {
        const path = join(folder, entry);
        const relativePath = relative(REPO_ROOT, path);
        if (dockerignore.ignores(relativePath) && statSync(path).isDirectory()) return [];
        return statSync(path).isDirectory() ? walk(path) : [relativePath];
      });
    const context = walk(REPO_ROOT).filter((path) => !dockerignore.ignores(path));
    const topLevel = new Set(context.map((path) => path.split('/')[0]));
    expect([...topLevel].sort()).toEqual(expect.arrayContaining(['package-lock.json', 'package.json', 'src']));
    expect(
      [...topLevel].filter(
        (entry) =>
          ![
            'package.json',
            'package-lock.json',
            'tsconfig.json',
            'tsconfig.build.json',
            'src',
            'scripts',
            'sql',
          ].includes(entry!),
      ),
    ).toEqual([]);
  });
});
