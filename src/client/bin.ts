#!/usr/bin/env node
/** The `provsec-secret` executable (package.json `bin`). */
import { runCli } from './cli';

void runCli(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr }).then(
  (code) => {
    process.exitCode = code;
  },
);
