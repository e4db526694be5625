/** Two projects: unit tests beside the code, integration tests (*.int.test.ts) against the real stack. */
const transform = { '^.+\\.ts$': ['@swc/jest'] };
const common = {
  testEnvironment: 'node',
  transform,
  modulePathIgnorePatterns: ['<rootDir>/dist/', '<rootDir>/.stack/'],
};

module.exports = {
  // Integration tests drive real engines; this is per test, not per suite.
  testTimeout: 120000,
  // One file at a time: integration files share one stack, and one stops a connector.
  maxWorkers: 1,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '\\.int\\.test\\.ts$'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/**/*.int.test.ts'],
    },
  ],
};
