/**
 * Playwright configuration of mlp-kernel's browser tests (the JupyterLab extension template's `ui-tests/`
 * layout, with Galata's defaults), changed only where this project must:
 *
 * - the browser is Debian's Chromium (/usr/bin/chromium, `apt-get install chromium`) with the flags the
 *   project has always used; Playwright never downloads one (that download does not work on our machines);
 * - each worker starts its own server (`jupyter lab --config jupyter_server_test_config.py`, the
 *   `jupyterServer` fixture of tests/fixtures.ts) on a free port, in Jupyter config/data/runtime directories
 *   of its own under one temporary root chosen here once, before the workers start (they re-read this file
 *   and inherit the root and the random token, which every request sends, through the environment); the
 *   server config builds the rest under the worker's directory (kernelspec copies, extension, users). Tests
 *   on different workers therefore share nothing: not the gpu-auto policy the admin tests change (and
 *   restore), not the GPU ledger of the runtime directory that the one-GPU queue, burst and preemption tests
 *   hold. Within a worker each test opens its own notebook and kernel, so any order or any single test passes;
 * - the workers of project `git` (tests/admin-git.spec.ts alone) start their server with the admin page's
 *   saves going through Git (MLP_UI_TESTS_GIT=1: a bare repository and the server's clone, made by the server
 *   config, under the worker's `git-server` folder); every other spec runs in project `lab`;
 * - three workers (MLP_UI_TEST_WORKERS to change) and `fullyParallel` (tests, not files, are shared out): most
 *   of a test is waiting on kernels and timers (the 25 s idle release, the 8 s slow start); without a trace
 *   recorded per test, three servers with three Chromiums fit the project's 2-core machine (the 26 specs in
 *   155 s against 180 s on two workers, same machine; with traces three gained 7 s: docs/benchmarks.md, "Test
 *   suite wall time");
 * - no video (Playwright's ffmpeg is a download too); screenshots of failures are kept; traces only when asked
 *   for (MLP_UI_TRACE=retain-on-failure, or `jlpm playwright test --trace on`): recording one for every test
 *   to keep those that fail cost 15% of the run's wall time on the 2-core machine (211 -> 180 s, same specs),
 *   and a failure's screenshot and the server's log (test-artifacts/browser/) usually say enough.
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const REPO = path.resolve(__dirname, '..', '..');
const CHROMIUM = process.env.MLP_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
];

if (!process.env.MLP_UI_TESTS_ROOT) {
  process.env.MLP_UI_TESTS_ROOT = fs.mkdtempSync(path.join(os.tmpdir(), 'mlp-ui-tests-'));
}
if (!process.env.MLP_UI_TESTS_TOKEN) {
  process.env.MLP_UI_TESTS_TOKEN = require('crypto').randomBytes(16).toString('hex');
}
const ARTIFACTS = path.join(REPO, 'test-artifacts', 'browser');
fs.mkdirSync(ARTIFACTS, { recursive: true });

module.exports = {
  ...baseConfig,
  testDir: './tests',
  outputDir: path.join(ARTIFACTS, 'results'),
  reporter: [[process.env.CI ? 'line' : 'list'], ['html', { open: 'never', outputFolder: path.join(ARTIFACTS, 'report') }]],
  // A gpu-auto kernel's first cell starts a GPU kernel behind it; the idle-release test waits out a 25 s timer.
  timeout: 300_000,
  expect: { timeout: 30_000 },
  workers: Number(process.env.MLP_UI_TEST_WORKERS || 3),
  fullyParallel: true,
  retries: 0,
  forbidOnly: !!process.env.CI,
  use: {
    ...baseConfig.use,
    viewport: { width: 1400, height: 900 },
    // The identity the server sees is the real one (the mlp_test_user cookie), not Galata's mocked /api/me.
    mockUser: false,
    // The server keeps token authentication (the test identity provider names a user only once it checks out):
    // every request of the pages and of the `request` fixture carries the token.
    extraHTTPHeaders: { Authorization: `token ${process.env.MLP_UI_TESTS_TOKEN}` },
    trace: process.env.MLP_UI_TRACE || 'off',
    screenshot: 'only-on-failure',
    video: 'off',
    launchOptions: { executablePath: CHROMIUM, args: CHROMIUM_ARGS }
  },
  // Two projects: every spec on plain servers, and the Git-mode admin spec on servers whose saves are commits
  // (a file-written save there would be a different product path).
  projects: [
    { name: 'lab', testIgnore: /admin-git\.spec\.ts$/ },
    {
      name: 'git',
      testMatch: /admin-git\.spec\.ts$/,
      use: { serverEnv: { MLP_UI_TESTS_GIT: '1' }, serverSubdir: 'git-server' }
    }
  ]
};
