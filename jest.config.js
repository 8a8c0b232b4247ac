const os = require('node:os');

/** @type {import('jest').Config} */
module.exports = {
  // Most suites wait on sockets, child processes and npm rather than on the CPU, and time in them
  // moves by the tests' clocks, not by sleeping: more workers than cores keeps the machine busy.
  maxWorkers: Math.max(3, os.cpus().length),
  testEnvironment: 'node',
  roots: ['<rootDir>/test', '<rootDir>/examples'],
  testMatch: ['**/*.test.ts'],
  // The starter is its own project, run from its packed install by test/package/starter.test.ts.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/examples/backend-starter/'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }],
  },
  // Generated and source files import each other with ".js" suffixes (NodeNext style).
  // The examples import the package by its name, as a consumer does; here that is the source.
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    '^grpc-auth-service$': '<rootDir>/src/index.ts',
    '^grpc-auth-service/(client|interceptor|testing)$': '<rootDir>/src/sdk/$1.ts',
  },
  globalSetup: '<rootDir>/test/global-setup.js',
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
  // A bound for a test that hangs, not a speed check (speed is `npm run bench`'s): generous enough
  // for the tests that spawn many processes while every core is busy (npm run test:loaded).
  testTimeout: 60000,
};
