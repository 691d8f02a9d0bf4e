/**
 * Jest reporter: with PROVSEC_REQUIRE_TOOLS=1 (set by .ci/run) a skipped or todo test fails the run,
 * so "CI skips nothing" is enforced, not hoped. Locally it does nothing (missing tools may skip there,
 * and say so; see test/support/external-tools.ts).
 */
class NoSkipsReporter {
  constructor() {
    this.skipped = [];
    this.error = undefined;
  }

  onTestResult(_test, testResult) {
    for (const result of testResult.testResults) {
      if (result.status === 'pending' || result.status === 'todo' || result.status === 'disabled')
        this.skipped.push(`${testResult.testFilePath}: ${result.fullName}`);
    }
  }

  onRunComplete() {
    if (process.env.PROVSEC_REQUIRE_TOOLS !== '1' || this.skipped.length === 0) return;
    const list = this.skipped.map((name) => `  - ${name}`).join('\n');
    this.error = new Error(`${this.skipped.length} test(s) skipped, and CI must skip none:\n${list}`);
    console.error(`\n${this.error.message}\n`);
  }

  getLastError() {
    return this.error;
  }
}

module.exports = NoSkipsReporter;
