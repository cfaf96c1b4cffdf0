/**
 * Pre-start on activity (issue 18): after a release, typing into a cell starts the GPU kernel before the cell
 * runs (the panel goes Starting, then Running, and says why), and the cell then runs on it, with the
 * variables restored and no start of its own (no progress line in the cell).
 */
import { KERNELS, RUNNING, expect, openGpuPanel, openNotebook, part, runFirstCell, shot, statusItem, test } from './fixtures';

test('typing into a cell of a released notebook pre-starts its GPU kernel before the cell runs', async ({
  page,
  tmpPath
}) => {
  const item = statusItem(page);
  await openNotebook(page, tmpPath, 'prestart.ipynb', KERNELS.gpuSlow, 'x = 6 * 7');
  await runFirstCell(page); // runs it and adds an empty cell below (the last cell's Shift+Enter)
  await expect(item).toHaveText(RUNNING, { timeout: 180_000 });
  const cells = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell');
  await expect(cells).toHaveCount(2);
  const panel = await openGpuPanel(page);
  await part(panel, 'release').click();
  await expect(item).toHaveText('Released (by you)', { timeout: 120_000 });

  const next = cells.nth(1);
  await next.locator('.cm-content').click();
  await page.keyboard.type('print(x)');
  // The slow kernelspec's start takes 8 s: long enough to see it starting while no cell runs.
  await expect(part(panel, 'panel-state')).toHaveText(/^Starting/, { timeout: 60_000 });
  await expect(part(panel, 'panel-prestart')).toHaveText('Pre-starting the GPU kernel because you started typing.');
  await expect(item).toHaveText(RUNNING, { timeout: 120_000 });
  await expect(part(panel, 'panel-prestart')).toContainText('Pre-started when you started typing');
  await expect(panel).toContainText('(pre-started when you started typing)');
  await expect(next.locator('.jp-OutputArea-output')).toHaveCount(0); // the cell has not run
  await shot(page, 'ui-panel-prestarted');

  await page.keyboard.press('Shift+Enter');
  // It runs on the pre-started kernel, x restored there: no start of its own, so no progress line.
  await expect(next.locator('.jp-OutputArea-output')).toHaveText(/^\s*42\s*$/, { timeout: 60_000 });
  await expect(next.locator('.jp-OutputArea-output').filter({ hasText: '[GPU (auto)]' })).toHaveCount(0);
  await expect(part(panel, 'panel-prestart')).not.toContainText('given back', { timeout: 30_000 });
});
