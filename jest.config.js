/** One real Postgres for the whole run (test/global-setup.ts); each test file makes its own database. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  // Under CI (PROVSEC_REQUIRE_TOOLS=1) a skipped test fails the run.
  reporters: ['default', '<rootDir>/test/support/no-skips-reporter.js'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 30000,
};
