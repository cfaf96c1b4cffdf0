// Unit tests cover the pure front-end logic (formatting, diff); they import no JupyterLab packages,
// so plain ts-jest in a node environment is enough (no jsdom, no ESM transform of @jupyterlab/*).
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src'],
  testRegex: 'src/__tests__/.*\\.spec\\.ts$',
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: { module: 'commonjs', types: ['jest'], esModuleInterop: true, strict: true } }]
  }
};
