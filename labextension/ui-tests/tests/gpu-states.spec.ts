/**
 * The states a user meets when things do not go to plan, on one machine: a queued request that bursts to the
 * public member after the policy's threshold (announced with its price), and a start that fails (the error
 * state, the error once in the cell, a notification that stays).
 */
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
