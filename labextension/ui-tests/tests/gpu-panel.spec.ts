/**
 * The GPU panel (opened from the status bar item) of a running GPU (auto) kernel.
 */
import { RUNNING, expect, openGpuPanel, openNotebook, runFirstCell, shot, statusItem, test } from './fixtures';

test('the Release GPU button releases the running kernel', async ({ page, tmpPath }) => {
  await openNotebook(page, tmpPath, 'release.ipynb');
  const item = statusItem(page);
  await runFirstCell(page);
  await expect(item).toHaveText(RUNNING, { timeout: 180_000 });
  const panel = await openGpuPanel(page);
  const release = panel.locator('[data-mlp-kernel="release"]');
  await expect(release).toBeEnabled();
  await release.click();
  await expect(item).toHaveText('Released (by you)', { timeout: 120_000 });
  await expect(release).toBeDisabled();
  await shot(page, 'ui-panel-released-by-user');
});
