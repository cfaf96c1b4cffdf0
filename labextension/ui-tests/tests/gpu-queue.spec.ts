/**
 * Queued, as the platform shows it, on one machine: a kernelspec whose policy has one GPU in one pool (the
 * local backend honours capacities across notebooks), so a second notebook waits with its position, and
 * starts when the first gives its GPU back.
 */
import { KERNELS, RUNNING, expect, openGpuPanel, openNotebook, part, runFirstCell, shot, statusItem, test } from './fixtures';

test('a second notebook queues with its position and runs once the first releases', async ({ page, tmpPath }) => {
  const item = statusItem(page);
  await openNotebook(page, tmpPath, 'first.ipynb', KERNELS.gpuQueue);
  await runFirstCell(page);
  await expect(item).toHaveText(/^RTX ×1 · private cluster · /, { timeout: 180_000 });

  await openNotebook(page, tmpPath, 'second.ipynb', KERNELS.gpuQueue);
  await runFirstCell(page);
  await expect(item).toHaveText(/^Queued: bronze, #1/, { timeout: 120_000 });
  await expect(item).toHaveAttribute('data-state', 'queued');
  const panel = await openGpuPanel(page);
  await expect(panel).toContainText('Position');
  await shot(page, 'ui-status-queued');

  // The first notebook gives its GPU back (its own panel); the second is admitted and runs.
  await page.getByRole('tab', { name: 'first.ipynb' }).click();
  await expect(item).toHaveText(RUNNING, { timeout: 60_000 });
  await part(panel, 'release').click();
  await expect(item).toHaveText('Released (by you)', { timeout: 120_000 });
  await page.getByRole('tab', { name: 'second.ipynb' }).click();
  await expect(item).toHaveText(/^RTX ×1 · private cluster · /, { timeout: 180_000 });
});
