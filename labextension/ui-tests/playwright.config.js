/**
 * Playwright configuration of mlp-kernel's browser tests (the JupyterLab extension template's `ui-tests/`
 * layout, with Galata's defaults), changed only where this project must:
 *
 * - the browser is Debian's Chromium (/usr/bin/chromium, `apt-get install chromium`) with the flags the
 *   project has always used; Playwright never downloads one (that download does not work on our machines);
 * - the server (`jlpm start`, i.e. `jupyter lab --config jupyter_server_test_config.py`) runs on a free port
 *   with a random token (every request sends it), in temporary Jupyter config/data/runtime directories chosen here once, before the workers start, so that
 *   the workers (which re-read this file) inherit the same ones through the environment; the server config
 *   builds the rest under that directory (kernelspec copy, extension, users);
 * - a second server, the same but with the admin page's saves going through Git (MLP_UI_TESTS_GIT=1: a bare
 *   repository and the server's clone, made by the server config), serves tests/admin-git.spec.ts alone
 *   (project `git`); every other spec runs on the first (project `lab`);
 * - one worker: the tests share one server and its gpu-auto kernelspec, whose policy the admin tests change
 *   (and restore); each test still opens its own notebook and kernel, so any order or any single test passes;
 * - no video (Playwright's ffmpeg is a download too); traces and screenshots of failures are kept.
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const REPO = path.resolve(__dirname, '..', '..');
const VENV_BIN = path.join(REPO, '.venv', 'bin');
const PYTHON = fs.existsSync(path.join(VENV_BIN, 'python')) ? path.join(VENV_BIN, 'python') : 'python3';
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

if (!process.env.MLP_UI_TESTS_DIR) {
  process.env.MLP_UI_TESTS_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'mlp-ui-tests-'));
}
if (!process.env.MLP_UI_TESTS_PORT) {
  const free = 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])';
  process.env.MLP_UI_TESTS_PORT = execFileSync(PYTHON, ['-c', free]).toString().trim();
}
if (!process.env.MLP_UI_TESTS_TOKEN) {
  process.env.MLP_UI_TESTS_TOKEN = require('crypto').randomBytes(16).toString('hex');
}
if (!process.env.MLP_UI_TESTS_GIT_PORT) {
  const free = 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])';
  process.env.MLP_UI_TESTS_GIT_PORT = execFileSync(PYTHON, ['-c', free]).toString().trim();
}
const BASE = process.env.MLP_UI_TESTS_DIR;
const ARTIFACTS = path.join(REPO, 'test-artifacts', 'browser');
fs.mkdirSync(ARTIFACTS, { recursive: true });
const URL = `http://127.0.0.1:${process.env.MLP_UI_TESTS_PORT}`;
/** The second server (tests/admin-git.spec.ts): the same, with the admin page's saves going through Git. */
const GIT_BASE = path.join(BASE, 'git-server');
const GIT_URL = `http://127.0.0.1:${process.env.MLP_UI_TESTS_GIT_PORT}`;

/** A `jupyter lab` with jupyter_server_test_config.py in temporary Jupyter directories under `base`. */
function labServer(base, port, url, log, extraEnv) {
  return {
    // The server's output (gateways' logs included) goes to a file; .ci/run prints its end when a test fails.
    command: `jlpm start > "${path.join(ARTIFACTS, log)}" 2>&1`,
    url: `${url}/lab`,
    timeout: 120_000,
    reuseExistingServer: false,
    // Terminate, not kill: the server then shuts its gpu-auto kernels (and their GPU kernels) down.
    gracefulShutdown: { signal: 'SIGTERM', timeout: 30_000 },
    env: {
      ...process.env,
      ...extraEnv,
      MLP_UI_TESTS_DIR: base,
      MLP_UI_TESTS_PORT: port,
      PATH: `${VENV_BIN}${path.delimiter}${process.env.PATH}`,
      JUPYTER_PATH: path.join(base, 'path'),
      JUPYTER_CONFIG_DIR: path.join(base, 'config'),
      JUPYTER_DATA_DIR: path.join(base, 'data'),
      JUPYTER_RUNTIME_DIR: path.join(base, 'runtime'),
      JUPYTER_PLATFORM_DIRS: '1',
      JUPYTERLAB_GALATA_ROOT_DIR: path.join(base, 'root'),
      PYTHONPATH: [REPO, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter)
    }
  };
}

module.exports = {
  ...baseConfig,
  testDir: './tests',
  outputDir: path.join(ARTIFACTS, 'results'),
  reporter: [[process.env.CI ? 'line' : 'list'], ['html', { open: 'never', outputFolder: path.join(ARTIFACTS, 'report') }]],
  // A gpu-auto kernel's first cell starts a GPU kernel behind it; the idle-release test waits out a 25 s timer.
  timeout: 300_000,
  expect: { timeout: 30_000 },
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  use: {
    ...baseConfig.use,
    baseURL: URL,
    viewport: { width: 1400, height: 900 },
    // The identity the server sees is the real one (the mlp_test_user cookie), not Galata's mocked /api/me.
    mockUser: false,
    // The server keeps token authentication (the test identity provider names a user only once it checks out):
    // every request of the pages and of the `request` fixture carries the token.
    extraHTTPHeaders: { Authorization: `token ${process.env.MLP_UI_TESTS_TOKEN}` },
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    video: 'off',
    launchOptions: { executablePath: CHROMIUM, args: CHROMIUM_ARGS }
  },
  // Two projects: every spec on the plain server, and the Git-mode admin spec on a second server whose saves are
  // commits (a file-written save there would be a different product path).
  projects: [
    { name: 'lab', testIgnore: /admin-git\.spec\.ts$/ },
    { name: 'git', testMatch: /admin-git\.spec\.ts$/, use: { baseURL: GIT_URL } }
  ],
  webServer: [
    labServer(BASE, process.env.MLP_UI_TESTS_PORT, URL, 'jupyter-lab.log', {}),
    labServer(GIT_BASE, process.env.MLP_UI_TESTS_GIT_PORT, GIT_URL, 'jupyter-lab-git.log', { MLP_UI_TESTS_GIT: '1' })
  ]
};