/**
 * The served /openapi.json, as Redocly CLI's `recommended` ruleset reads it (with the two rules
 * redocly.yaml turns off, each with its reason): no error and no warning. Offline: telemetry and
 * update notices are off, and the document is read from a local file.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APP_ROOT } from '../../src/app-root';
import { startTestService, type TestService } from '../support/test-service';

const REDOCLY_CLI = join(APP_ROOT, 'node_modules', '@redocly', 'cli', 'bin', 'cli.js');
const REDOCLY_CONFIG = join(APP_ROOT, 'redocly.yaml');

interface LintReport {
  totals: { errors: number; warnings: number; ignored: number };
  problems: Array<{ ruleId: string; severity: string; message: string; location: Array<{ pointer: string }> }>;
}

let svc: TestService;
let served: Record<string, unknown>;
let workDir: string;

beforeAll(async () => {
  svc = await startTestService();
  const response = await fetch(`${svc.url}/openapi.json`);
  expect(response.status).toBe(200);
  served = (await response.json()) as Record<string, unknown>;
  workDir = mkdtempSync(join(tmpdir(), 'provsec-openapi-lint-'));
});
afterAll(async () => {
  rmSync(workDir, { recursive: true, force: true });
  await svc.stop();
});

function lint(document: unknown): { report: LintReport; findings: string[] } {
  const file = join(workDir, 'openapi.json');
  writeFileSync(file, JSON.stringify(document));
  const result = spawnSync(process.execPath, [REDOCLY_CLI, 'lint', '--config', REDOCLY_CONFIG, '--format=json', file], {
    encoding: 'utf8',
    cwd: workDir,
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_NOTIFICATIONS: 'true' },
    timeout: 60_000,
  });
  if (result.error) throw result.error;
  const report = JSON.parse(result.stdout) as LintReport;
  const findings = report.problems.map(
    ({ ruleId, severity, message, location }) => `${severity} ${ruleId} at ${location[0]?.pointer}: ${message}`,
  );
  return { report, findings };
}

test('the served document passes Redocly recommended with no error and no warning', () => {
  const { report, findings } = lint(served);
  expect(findings).toEqual([]);
  expect(report.totals).toEqual({ errors: 0, warnings: 0, ignored: 0 });
});

test('the lint can fail: the same document without servers and licence is an error and a warning', () => {
  const { servers: _servers, info, ...rest } = served;
  const { license: _license, ...infoWithoutLicense } = info as Record<string, unknown>;
  const { report, findings } = lint({ ...rest, info: infoWithoutLicense });
  expect(report.totals).toEqual({ errors: 1, warnings: 1, ignored: 0 });
  expect(findings.map((finding) => finding.split(' at ')[0]).sort()).toEqual([
    'error no-empty-servers',
    'warn info-license',
  ]);
});
