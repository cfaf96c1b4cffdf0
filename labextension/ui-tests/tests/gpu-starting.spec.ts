/**
 * Starting, as a user sees it while a GPU kernel boots: the status bar item says what is happening now, the
 * panel shows the phase and where it will run, and the cell holds one progress line; then it runs.
 */
import { KERNELS, RUNNING, expect, openGpuPanel, openNotebook, part, runFirstCell, shot, statusItem, test } from './fixtures';

test('a starting kernel shows its phase in the status bar, the panel and one line in the cell', async ({
  page,
  tmpPath
}) => {
  const item = statusItem(page);
  await openNotebook(page, tmpPath, 'starting.ipynb', KERNELS.gpuSlow);
  await runFirstCell(page);
  await expect(item).toHaveText(/^Starting/, { timeout: 60_000 });
  await expect(item).toHaveAttribute('data-state', 'starting');
  const panel = await openGpuPanel(page);
  await expect(part(panel, 'panel-state')).toHaveText(/^Starting/);
  await expect(panel).toContainText('Phase');
  const progress = page.locator('.jp-OutputArea-output').filter({ hasText: '[GPU (auto)]' });
  await expect(progress).toHaveCount(1);
  await shot(page, 'ui-status-starting');
  await expect(item).toHaveText(RUNNING, { timeout: 120_000 });
  await expect(progress).toHaveCount(1); // collapsed to one line saying where it runs
  await expect(progress).toContainText('Running on local/local');
});
