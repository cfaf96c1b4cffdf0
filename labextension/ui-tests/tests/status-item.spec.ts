/**
 * The status bar item of a GPU (auto) notebook: its states from the first snapshot to an idle release, its
 * comeback after a kernel restart, and its absence for other kernels. Each test opens its own notebook.
 */
import { KERNELS, RUNNING, expect, openGpuPanel, openNotebook, output42, runFirstCell, shot, statusItem, test } from './fixtures';

test('goes from CPU only to running to released after idle', async ({ page, tmpPath }) => {
  await openNotebook(page, tmpPath, 'gpu.ipynb');
  const item = statusItem(page);
  await expect(item).toHaveText('CPU only', { timeout: 120_000 });
  await shot(page, 'ui-status-cpu-only');

  await runFirstCell(page);
  await expect(output42(page)).toBeVisible({ timeout: 180_000 });
  await expect(item).toHaveText(RUNNING, { timeout: 60_000 });
  await shot(page, 'ui-status-running');

  const panel = await openGpuPanel(page);
  await expect(panel.locator('[data-mlp-kernel="idle-countdown"]')).toHaveText(/\d+:\d\d/);
  await expect(panel).toContainText('Why here');
  await shot(page, 'ui-panel-running');

  // The kernelspec's idle timeout is 25 s.
  await expect(item).toHaveText(/^Released \(idle/, { timeout: 180_000 });
  await expect(page.locator('.Toastify__toast').filter({ hasText: 'GPU released' })).toBeVisible();
  await shot(page, 'ui-status-released-idle');
});

test('reconnects after a kernel restart', async ({ page, tmpPath }) => {
  await openNotebook(page, tmpPath, 'restart.ipynb');
  const item = statusItem(page);
  await runFirstCell(page);
  await expect(item).toHaveText(RUNNING, { timeout: 180_000 });
  await page.getByRole('button', { name: 'Restart the kernel', exact: true }).click();
  await page.locator('.jp-Dialog .jp-Dialog-button.jp-mod-accept').click();
  // A restart starts a new gateway process; the item re-opens the comm and shows its first snapshot.
  await expect(item).toHaveText('CPU only', { timeout: 120_000 });
});

test('is hidden for other kernels', async ({ page, tmpPath }) => {
  await openNotebook(page, tmpPath, 'plain.ipynb', KERNELS.python3);
  await expect(page.getByRole('button', { name: /Python 3.*\| Idle/ })).toBeVisible();
  await runFirstCell(page);
  await expect(output42(page)).toBeVisible({ timeout: 120_000 });
  await expect(statusItem(page)).toBeHidden();
  await shot(page, 'ui-other-kernel');
});
