/**
 * The GPU panel (opened from the status bar item) of a running GPU (auto) kernel: its buttons say what they
 * did, and after a release it shows no stale placement or price.
 */
import { RUNNING, expect, openGpuPanel, openNotebook, part, runFirstCell, shot, statusItem, test, toast } from './fixtures';

test('the Release GPU button releases the running kernel, quietly', async ({ page, tmpPath }) => {
  await openNotebook(page, tmpPath, 'release.ipynb');
  const item = statusItem(page);
  await runFirstCell(page);
  await expect(item).toHaveText(RUNNING, { timeout: 180_000 });
  const panel = await openGpuPanel(page);
  await expect(part(panel, 'panel-where')).toBeVisible();
  await expect(panel).toContainText('Why here');
  // The Change GPU choice starts at the GPU the kernel runs on.
  await expect(part(panel, 'change-gpu-choice')).toHaveValue('model:local');
  // The request, in words.
  await part(panel, 'panel-request').locator('summary').click();
  await expect(part(panel, 'panel-request')).toContainText('Burst');
  const release = part(panel, 'release');
  await expect(release).toBeEnabled();
  await release.click();
  await expect(part(panel, 'panel-notice')).toContainText('Asked to release the GPU');
  await expect(item).toHaveText('Released (by you)', { timeout: 120_000 });
  await expect(release).toBeDisabled();
  // Released: no old "Why here", no where or price; the notebook's total stays.
  await expect(panel).not.toContainText('Why here');
  await expect(part(panel, 'panel-where')).toHaveCount(0);
  await expect(part(panel, 'panel-cost')).toContainText('Notebook total');
  await expect(part(panel, 'panel-cost')).not.toContainText('Price');
  // A release the user asked for is no notification.
  await page.waitForTimeout(1500);
  await expect(toast(page, 'GPU released')).toHaveCount(0);
  await shot(page, 'ui-panel-released-by-user');
});

test('after a release, a widget of the released kernel says once in its cell that it is gone', async ({
  page,
  tmpPath
}) => {
  const widget =
    'from IPython.display import display\n' +
    "display({'application/vnd.jupyter.widget-view+json': {'model_id': 'gone', 'version_major': 2, " +
    "'version_minor': 0}, 'text/plain': 'IntSlider(value=3)'}, raw=True)";
  await openNotebook(page, tmpPath, 'widget.ipynb', undefined, widget);
  const item = statusItem(page);
  await runFirstCell(page);
  await expect(item).toHaveText(RUNNING, { timeout: 180_000 });
  const panel = await openGpuPanel(page);
  await part(panel, 'release').click();
  await expect(item).toHaveText('Released (by you)', { timeout: 120_000 });
  const cell = page.locator('.jp-Notebook .jp-Cell').first();
  const gone = cell.locator('.jp-OutputArea-output').filter({ hasText: 'belonged to a GPU kernel that has been released' });
  await expect(gone).toHaveCount(1);
  await expect(cell.locator('.jp-OutputArea')).not.toContainText(/IntSlider|model not found/);
  await shot(page, 'ui-widget-released');
});
