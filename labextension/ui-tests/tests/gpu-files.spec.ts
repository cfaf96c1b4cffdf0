/**
 * The GPU panel's Files section (issue 14 §2): what the GPU kernel sees of the notebook's files. On the test
 * server's local backend the kernel works in the notebook's own directory on this machine's disk; after a
 * release the section stays, for the last GPU kernel.
 */
import { RUNNING, expect, openGpuPanel, openNotebook, part, runFirstCell, shot, statusItem, test } from './fixtures';

test('the Files section says the kernel works in the notebook directory on this disk', async ({ page, tmpPath }) => {
  await openNotebook(page, tmpPath, 'files.ipynb', undefined, "import os\nprint(os.getcwd())");
  const item = statusItem(page);
  await runFirstCell(page);
  await expect(item).toHaveText(RUNNING, { timeout: 180_000 });
  const panel = await openGpuPanel(page);
  const files = part(panel, 'panel-files');
  await expect(files.locator('summary').first()).toHaveText('Files');
  await expect(files.locator('tr').filter({ hasText: 'Sees' })).toContainText("this machine's disk");
  // The directory the panel names is the one the kernel prints: the notebook's, as the server sees it.
  const printed = page.locator('.jp-OutputArea-output').filter({ hasText: tmpPath }).last();
  await expect(printed).toBeVisible({ timeout: 60_000 });
  const cwd = ((await printed.textContent()) ?? '').trim().split('\n').pop()!.trim();
  expect(cwd.endsWith(`/${tmpPath}`)).toBe(true);
  await expect(files.locator('tr').filter({ hasText: 'Directory' }).locator('td')).toHaveText(cwd);
  await expect(part(files, 'panel-files-sentence')).toHaveText(
    `the notebook's directory ${cwd} (this machine's disk, as the notebook server sees it)`
  );
  await expect(part(files, 'panel-files-left-out')).toHaveCount(0); // nothing was copied, nothing left out
  await shot(page, 'ui-panel-files');

  await part(panel, 'release').click();
  await expect(item).toHaveText('Released (by you)', { timeout: 120_000 });
  await expect(files.locator('summary').first()).toHaveText('Files (last GPU kernel)');
});
