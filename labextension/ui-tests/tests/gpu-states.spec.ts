/**
 * The states a user meets when things do not go to plan, on one machine: a queued request that bursts to the
 * public member after the policy's threshold (announced with its price), and a start that fails (the error
 * state, the error once in the cell, a notification that stays).
 */
import { spawn } from 'child_process';
import * as path from 'path';

/** The repository's virtualenv, where `mlp-kernel` is (as playwright.config.js finds it). */
const VENV_BIN = path.resolve(__dirname, '..', '..', '..', '.venv', 'bin');

/** The test server's Jupyter directories (playwright.config.js): its kernelspecs and its runtime dir, which
 * holds this machine's GPU ledger. */
function serverDirs(): Record<string, string> {
  const base = process.env.MLP_UI_TESTS_DIR!;
  return {
    JUPYTER_PATH: path.join(base, 'path'),
    JUPYTER_DATA_DIR: path.join(base, 'data'),
    JUPYTER_RUNTIME_DIR: path.join(base, 'runtime'),
    JUPYTER_PLATFORM_DIRS: '1'
  };
}

import { KERNELS, RUNNING, expect, openGpuPanel, openNotebook, part, runFirstCell, shot, statusItem, test, toast } from './fixtures';

test('a queued notebook bursts to the public member after the threshold, with its price', async ({ page, tmpPath }) => {
  const item = statusItem(page);
  await openNotebook(page, tmpPath, 'first.ipynb', KERNELS.gpuBurst);
  await runFirstCell(page);
  await expect(item).toHaveText(/^RTX ×1 · private cluster · /, { timeout: 180_000 });

  await openNotebook(page, tmpPath, 'second.ipynb', KERNELS.gpuBurst);
  await runFirstCell(page);
  await expect(item).toHaveText(/^A100 ×1 · AWS · public \$4\.10\/h/, { timeout: 180_000 });
  await expect(item).toHaveAttribute('data-public', 'true');
  await expect(toast(page, /\$4\.10\/h/)).toBeVisible();
  const panel = await openGpuPanel(page);
  await expect(part(panel, 'panel-where')).toContainText('AWS');
  await expect(panel).toContainText('Burst to aws/gold');
  await shot(page, 'ui-status-burst');
  await expect(item).toHaveText(RUNNING);
});

test('a start that fails shows the error state, the error once in the cell, and a notification', async ({
  page,
  tmpPath
}) => {
  const item = statusItem(page);
  await openNotebook(page, tmpPath, 'broken.ipynb', KERNELS.gpuBroken);
  await runFirstCell(page);
  await expect(item).toHaveText('GPU error', { timeout: 120_000 });
  await expect(item).toHaveAttribute('data-state', 'error');
  const errors = page.locator('.jp-OutputArea-output').filter({ hasText: 'GpuStartError' });
  await expect(errors).toHaveCount(1);
  await expect(page.locator('.jp-OutputArea-output').filter({ hasText: '[GPU (auto)]' })).toHaveCount(0);
  await expect(toast(page, /Could not start a local kernel/)).toBeVisible();
  await shot(page, 'ui-status-error');
});

test('a higher-priority workload preempts the kernel: the cell and a notification say so, the next cell queues', async ({
  page,
  tmpPath
}) => {
  const item = statusItem(page);
  await openNotebook(page, tmpPath, 'preempted.ipynb', KERNELS.gpuQueue, 'import time\ntime.sleep(600)');
  await runFirstCell(page);
  await expect(item).toHaveText(/^RTX ×1 · private cluster · busy/, { timeout: 180_000 });
  // Other people's urgent work on the one-GPU pool (the server's own runtime dir holds the GPU ledger).
  const load = spawn(
    path.join(VENV_BIN, 'mlp-kernel'),
    ['local-load', '--kernelspec', 'gpu-queue', '--flavor', 'bronze', '--minutes', '0.5', '--preempt'],
    { env: { ...process.env, ...serverDirs() } }
  );
  let said = '';
  load.stdout.on('data', chunk => (said += chunk));
  load.stderr.on('data', chunk => (said += chunk));
  try {
    await expect(toast(page, /preempted to make room for higher-priority work/)).toBeVisible({ timeout: 120_000 });
    await expect.poll(() => said, { timeout: 60_000 }).toContain('Holding 1 GPU(s) of private/bronze');
    await expect(item).toHaveText(/^Released \(preempted\)/);
    await expect(page.locator('.jp-OutputArea-output').filter({ hasText: 'GpuKernelLost' })).toHaveCount(1);
    await shot(page, 'ui-status-preempted');
  } finally {
    load.kill();
  }
});
