/** @jest-config-loader esbuild-register */
import type { Config } from 'jest'

const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  // Sources import with .js extensions (NodeNext); jest resolves the .ts file.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 20_000,
  // A one-screen coverage summary at the end of every run (lines, branches, functions of the
  // package's own code). Stores that some tests run in child processes are not counted.
  collectCoverage: true,
  collectCoverageFrom: ['entries/**/*.ts', 'lib/**/*.ts', 'stores/**/*.ts'],
  coverageReporters: ['text-summary'],
}

export default config
