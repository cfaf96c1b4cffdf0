/**
 * What every mlp-kernel browser test needs, on top of Galata's fixtures: who the user is, a notebook of its
 * own on a given kernel, and the extension's parts (status bar item, GPU panel, admin page) by the
 * `data-mlp-kernel` attributes the extension puts on them. New tests import `test` and `expect` from here.
 *
 * Each test gets Galata's fresh, in-memory workspace and its own server folder (`tmpPath`, deleted after
 * the test), and the sessions and kernels of its notebooks are shut down when it ends; so tests do not
 * depend on one another's notebooks, kernels or order.
 *
 * Each Playwright worker runs its own Jupyter server (`jupyterServer`, below), in Jupyter directories of its
 * own: so tests on different workers share no kernelspec policy (the admin tests save it), no runtime
 * directory (the local backend's GPU ledger, where the one-GPU queue, burst and preemption tests hold the
 * same `bronze` GPU) and no history, and the specs run side by side on several workers.
 */
import { expect, IJupyterLabPageFixture, test as base } from '@jupyterlab/galata';
import type { Locator } from '@playwright/test';
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';

export { expect };

export const ADMIN = 'alice';
export const USER = 'bob';

/** The status bar item's text while a GPU kernel runs: `<model> ×1 · <where> · idle 0:24` (or `busy`). */
export const RUNNING = /^\S+ ×\d+ · .+ · (idle \d+:\d\d|busy)$/;

const REPO = path.resolve(__dirname, '..', '..', '..');
const ARTIFACTS = path.join(REPO, 'test-artifacts', 'browser');
const UI_TESTS = path.resolve(__dirname, '..');
const VENV_BIN = path.join(REPO, '.venv', 'bin');

// In a worker process (Playwright sets TEST_WORKER_INDEX before it loads the test files), MLP_UI_TESTS_DIR is
// this worker's server directory under the run's MLP_UI_TESTS_ROOT (playwright.config.js), as the server
// config and the specs read it. A worker that replaces a failed one gets a new index, so a fresh directory.
if (process.env.TEST_WORKER_INDEX !== undefined && process.env.MLP_UI_TESTS_ROOT) {
  process.env.MLP_UI_TESTS_DIR = path.join(process.env.MLP_UI_TESTS_ROOT, `worker-${process.env.TEST_WORKER_INDEX}`);
}

/** The gpu-auto kernelspec this worker's server uses (a copy made by jupyter_server_test_config.py). */
export const SPEC_DIR = path.join(process.env.MLP_UI_TESTS_DIR ?? '', 'path', 'kernels', 'gpu-auto');

export const KERNELS = {
  gpuAuto: { name: 'gpu-auto', display_name: 'GPU (auto)' },
  python3: { name: 'python3', display_name: 'Python 3' },
  /** The README's demo kernelspec (demo-policy.yaml: private cluster and AWS), found by its provisioner. */
  gpuDemo: { name: 'gpu-demo', display_name: 'GPU (demo)' },
  /** One GPU in one pool (queue-policy.yaml, written by the server config): a second notebook queues. */
  gpuQueue: { name: 'gpu-queue', display_name: 'GPU (queue)' },
  /** Its kernel's interpreter sleeps 8 s first (written by the server config): the Starting state lasts. */
  gpuSlow: { name: 'gpu-slow', display_name: 'GPU (slow start)' },
  /** One private GPU, a public AWS member, burst after 3 s of queueing (burst-policy.yaml). */
  gpuBurst: { name: 'gpu-burst', display_name: 'GPU (burst)' },
  /** Its interpreter does not exist: every start fails (the error state). */
  gpuBroken: { name: 'gpu-broken', display_name: 'GPU (broken)' }
};

export type Session = { id: string; path: string; kernel: { id: string } };

type WorkerFixtures = {
  /** Environment for this worker's server on top of the run's (a project's `use`, e.g. a server mode). */
  serverEnv: Record<string, string>;
  /** The folder, under this worker's MLP_UI_TESTS_DIR, of its server's Jupyter directories ('' for that dir). */
  serverSubdir: string;
  /** This worker's Jupyter server (`jupyter lab --config jupyter_server_test_config.py`): its base URL. */
  jupyterServer: string;
};

type Fixtures = {
  /** The user the server sees (the test identity provider's cookie); `test.use({ user: USER })`. */
  user: string;
  /** The gpu-auto kernelspec's policy.yaml, put back as it was after the test (the admin tests save it). */
  policyFile: string;
  /** Shuts down, after each test, the sessions (and so kernels) of its notebooks (automatic). */
  ownKernels: void;
};

export const test = base.extend<Fixtures, WorkerFixtures>({
  serverEnv: [{}, { scope: 'worker', option: true }],
  serverSubdir: ['', { scope: 'worker', option: true }],
  jupyterServer: [
    async ({ serverEnv, serverSubdir }, use, workerInfo) => {
      const dir = path.join(process.env.MLP_UI_TESTS_DIR!, serverSubdir);
      const server = await startServer(workerInfo.workerIndex, dir, serverEnv);
      try {
        await use(server.url);
      } finally {
        await stopServer(server.process);
      }
    },
    // Start-up (the server and its extensions) on a loaded 2-core machine; a graceful stop waits up to 30 s.
    { scope: 'worker', timeout: 200_000 }
  ],
  // Every page and `request` of the test talks to its worker's server.
  baseURL: async ({ jupyterServer }, use) => use(jupyterServer),
  user: [ADMIN, { option: true }],
  // Galata routes the page's /api/kernels and /api/sessions requests through Playwright to track what a test
  // starts. Through that proxy the status item never got its first snapshot after a kernel restart (it did
  // against the server itself), so the pages talk to the server directly and `ownKernels` cleans up instead.
  kernels: async ({}, use) => use(null),
  sessions: async ({}, use) => use(null),
  ownKernels: [
    async ({ request, tmpPath }, use) => {
      await use();
      // The test's notebooks are under its tmpPath; deleting a session shuts its kernel down. Only these: a
      // test running beside this one (another worker) keeps its own.
      const sessions: Session[] = await (await request.get('api/sessions')).json();
      for (const session of sessions.filter(s => s.path.startsWith(`${tmpPath}/`))) {
        expect((await request.delete(`api/sessions/${session.id}`)).ok()).toBe(true);
      }
    },
    { auto: true }
  ],
  // Galata's wait for the Launcher gives up after 15 s, which a 2-core machine under heavy load can exceed;
  // the same wait, with the tests' patience. (Galata's earlier wait for `window.jupyterapp`, inside its goto,
  // keeps its own 15 s: at load average 20 and more JupyterLab took longer and the tests failed there.)
  waitForApplication: async ({}, use) => {
    await use(async (page, helpers) => {
      await page.locator('#jupyterlab-splash').waitFor({ state: 'detached', timeout: 120_000 });
      await helpers.waitForCondition(() => helpers.activity.isTabActive('Launcher'), 120_000);
      if (!(await helpers.isInSimpleMode())) {
        await helpers.activity.activateTab('Launcher');
      }
    });
  },
  // Galata's goto waits at most 15 s for JupyterLab to start (`window.jupyterapp`); on a 2-core machine under
  // heavy load it can take longer (at load average 20 half the tests failed there). So the page is opened here,
  // as Galata's autoGoto would (the test's folder, workspace reset), up to three times: a later load is faster,
  // its files being cached. Only the start is retried, never a test's own steps.
  autoGoto: false,
  page: async ({ page, tmpPath }, use) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await page.goto(`tree/${tmpPath}?reset`);
        break;
      } catch (error) {
        if (attempt === 3) {
          throw error;
        }
      }
    }
    await use(page);
  },
  context: async ({ context, user, baseURL }, use) => {
    await context.addCookies([{ name: 'mlp_test_user', value: user, url: baseURL! }]);
    await use(context);
  },
  policyFile: async ({}, use) => {
    const file = path.join(SPEC_DIR, 'policy.yaml');
    const original = fs.readFileSync(file, 'utf-8');
    await use(file);
    fs.writeFileSync(file, original);
  }
});

/** A free TCP port on 127.0.0.1 (the server binds it a moment later; a clash fails the start, saying so). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const port = (probe.address() as net.AddressInfo).port;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts worker `index`'s server (with `serverEnv`) on a free port, its Jupyter directories under `dir`, logging
 * to test-artifacts/browser/jupyter-lab-<index>.log, and returns once `/api` answers; fails with the log's end
 * when the server exits or does not answer in 150 s.
 */
async function startServer(
  index: number,
  dir: string,
  serverEnv: Record<string, string>
): Promise<{ url: string; process: ChildProcess }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFile = path.join(ARTIFACTS, `jupyter-lab-${index}.log`);
  const log = fs.openSync(logFile, 'w');
  const server = spawn(path.join(VENV_BIN, 'jupyter'), ['lab', '--config', 'jupyter_server_test_config.py'], {
    cwd: UI_TESTS,
    stdio: ['ignore', log, log],
    env: {
      ...process.env,
      ...serverEnv,
      MLP_UI_TESTS_DIR: dir,
      PATH: `${VENV_BIN}${path.delimiter}${process.env.PATH}`,
      MLP_UI_TESTS_PORT: String(port),
      JUPYTER_PATH: path.join(dir, 'path'),
      JUPYTER_CONFIG_DIR: path.join(dir, 'config'),
      JUPYTER_DATA_DIR: path.join(dir, 'data'),
      JUPYTER_RUNTIME_DIR: path.join(dir, 'runtime'),
      JUPYTER_PLATFORM_DIRS: '1',
      JUPYTERLAB_GALATA_ROOT_DIR: path.join(dir, 'root'),
      PYTHONPATH: [REPO, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter)
    }
  });
  fs.closeSync(log);
  const tail = () => fs.readFileSync(logFile, 'utf-8').split('\n').slice(-40).join('\n');
  const deadline = Date.now() + 150_000;
  for (;;) {
    if (server.exitCode !== null || server.signalCode !== null) {
      throw new Error(`The test server (worker ${index}) exited (${server.exitCode ?? server.signalCode}):\n${tail()}`);
    }
    try {
      if ((await fetch(`${url}/api`)).ok) {
        return { url, process: server };
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stopServer(server);
      throw new Error(`The test server (worker ${index}) did not answer on ${url} in 150 s:\n${tail()}`);
    }
    await new Promise(resolve => setTimeout(resolve, 250));
  }
}

/** Terminates the server (it then shuts its gpu-auto kernels and their GPU kernels down); kills it after 30 s. */
async function stopServer(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) {
    return;
  }
  const exited = new Promise(resolve => server.once('exit', resolve));
  server.kill('SIGTERM');
  const timer = setTimeout(() => server.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Writes `<tmpPath>/<name>` (one code cell, `print(6 * 7)` unless `source` says otherwise, on `kernel`), opens
 * it and waits until its kernel is idle (a cell run before that can be lost).
 */
export async function openNotebook(
  page: IJupyterLabPageFixture,
  tmpPath: string,
  name: string,
  kernel: { name: string; display_name: string } = KERNELS.gpuAuto,
  source = 'print(6 * 7)'
): Promise<string> {
  const notebook = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { ...kernel, language: 'python' } },
    cells: [{ cell_type: 'code', id: 'c1', metadata: {}, outputs: [], execution_count: null, source }]
  };
  const file = `${tmpPath}/${name}`;
  expect(await page.contents.uploadContent(JSON.stringify(notebook), 'text', file)).toBe(true);
  expect(await page.notebook.openByPath(file)).toBe(true);
  // Galata starts on a Launcher; without it the screenshots show the notebook alone, as docs/img's do. (Its
  // closePanel would not do: JupyterLab reopens a Launcher when the main area is left empty.)
  const launcher = page.activity.getTabLocator('Launcher');
  if (await launcher.count()) {
    await launcher.locator('.lm-TabBar-tabCloseIcon').click();
    await expect(launcher).toHaveCount(0);
  }
  await expect(kernelIdle(page)).toBeVisible({ timeout: 120_000 });
  return file;
}

/** The notebook toolbar's kernel button while the kernel is idle (its name reads `GPU (auto) | Idle`). */
export function kernelIdle(page: IJupyterLabPageFixture): Locator {
  return page.getByRole('button', { name: /\| Idle/ });
}

/** The JupyterLab notifications (toasts) that show `text`. */
export function toast(page: IJupyterLabPageFixture, text: string | RegExp): Locator {
  return page.locator('.Toastify__toast').filter({ hasText: text });
}

/** Runs the active notebook's first cell the way a user does (click, Shift+Enter); does not wait for it. */
export async function runFirstCell(page: IJupyterLabPageFixture): Promise<void> {
  await page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell').first().click();
  await page.keyboard.press('Shift+Enter');
}

/** The output `42` of the first cell. */
export function output42(page: IJupyterLabPageFixture): Locator {
  return page.locator('.jp-OutputArea-output').filter({ hasText: '42' });
}

/** The GPU (auto) status bar item. */
export function statusItem(page: IJupyterLabPageFixture): Locator {
  return page.locator('[data-mlp-kernel="status-item"]');
}

/** Opens the GPU panel (a click on the status item) unless it is open, and returns it. */
export async function openGpuPanel(page: IJupyterLabPageFixture): Promise<Locator> {
  const panel = page.locator('#mlp-kernel-gpu-panel');
  if (!(await panel.isVisible())) {
    await statusItem(page).click();
  }
  await expect(panel).toBeVisible();
  return panel;
}

/** Opens the admin page from the command palette and returns it. */
export async function openAdmin(page: IJupyterLabPageFixture): Promise<Locator> {
  await page.keyboard.press('Control+Shift+C');
  await page.locator('.lm-CommandPalette-input').fill('GPU (auto) admin');
  await page.keyboard.press('Enter');
  const admin = page.locator('.mlp-kernel-Admin');
  await admin.waitFor();
  return admin;
}

/**
 * Opens one of the admin page's file tabs (`policy.yaml`, `kernel.json`, ...) and returns its editor's text
 * area (JupyterLab's CodeMirror: `fill` replaces the text as typing would; read it with `editorText`).
 */
export async function fileTab(admin: Locator, name: string): Promise<Locator> {
  await admin.locator(`[data-mlp-kernel-tab="${name}"]`).click();
  const editor = admin.locator('[data-mlp-kernel="editor"] .cm-content');
  await editor.waitFor();
  return editor;
}

/** The whole text of an admin editor (CodeMirror draws only the visible lines; its state has them all). */
export function editorText(editor: Locator): Promise<string> {
  return editor.evaluate(el => (el as any).cmView.view.state.doc.toString() as string);
}

/** The admin page's element with `data-mlp-kernel="<name>"`. */
export function part(admin: Locator, name: string): Locator {
  return admin.locator(`[data-mlp-kernel="${name}"]`);
}

/**
 * Saves a screenshot to test-artifacts/browser/<name>.png (docs/img/ holds copies of the ones docs/ui.md
 * shows).
 */
export async function shot(page: IJupyterLabPageFixture, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}
