/**
 * Checks that need a program from outside npm. A local run without the program skips those tests
 * and says which check was skipped and why; CI (.ci/run sets PROVSEC_REQUIRE_TOOLS=1 after
 * installing them) fails instead, so a check can never drop out of CI unnoticed.
 */
import { spawnSync } from 'node:child_process';

/** Set by .ci/run: a missing tool is an error, not a skip (test/support/no-skips-reporter.js also holds CI to zero skips). */
export const TOOLS_REQUIRED = process.env.PROVSEC_REQUIRE_TOOLS === '1';

interface ExternalTool {
  readonly command: string;
  readonly versionArgs: readonly string[];
  /** Where it comes from; .ci/run installs the Debian packages named here. */
  readonly install: string;
}

export const EXTERNAL_TOOLS = {
  go: { command: 'go', versionArgs: ['version'], install: 'apt-get install golang-go' },
  shellcheck: { command: 'shellcheck', versionArgs: ['--version'], install: 'apt-get install shellcheck' },
  promtool: { command: 'promtool', versionArgs: ['--version'], install: 'apt-get install prometheus' },
  openssl: { command: 'openssl', versionArgs: ['version'], install: 'apt-get install openssl' },
  kubectl: {
    command: 'kubectl',
    versionArgs: ['version', '--client'],
    install: 'kubectl from https://kubernetes.io/docs/tasks/tools/ (Debian has only a 1.20 kubernetes-client)',
  },
} as const satisfies Record<string, ExternalTool>;

export type ExternalToolName = keyof typeof EXTERNAL_TOOLS;

const found = new Map<ExternalToolName, boolean>();

function runs(name: ExternalToolName): boolean {
  let answer = found.get(name);
  if (answer === undefined) {
    const tool = EXTERNAL_TOOLS[name];
    answer = spawnSync(tool.command, [...tool.versionArgs], { stdio: 'ignore', timeout: 20_000 }).status === 0;
    found.set(name, answer);
  }
  return answer;
}

/**
 * Whether `check` can run here. Without the tool: under CI this throws (the test file fails to
 * load, naming the tool); locally it warns "skipped: <check> (<tool> is not installed: ...)" and
 * returns false, for the caller to pick `describe.skip` / `test.skip`.
 */
export function toolAvailable(name: ExternalToolName, check: string): boolean {
  if (runs(name)) return true;
  const tool = EXTERNAL_TOOLS[name];
  const reason = `${tool.command} is not installed; to install: ${tool.install}`;
  if (TOOLS_REQUIRED) throw new Error(`${check} cannot run: ${reason}; PROVSEC_REQUIRE_TOOLS=1 forbids skipping it`);
  console.warn(`skipped: ${check} (${reason})`);
  return false;
}
