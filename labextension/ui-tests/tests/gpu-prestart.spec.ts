/**
 * Pre-start on activity (issue 18): after a release, typing into a cell starts the GPU kernel before the cell
 * runs (the panel goes Starting, then Running, and says why), and the cell then runs on it, with the
 * variables restored and no start of its own (no progress line in the cell). In a fresh notebook that never
 * had a GPU kernel, typing *code* starts its first kernel the same way (release.prestart.first); the
 * pre-start's notification closes by itself after a few seconds (the panel line says it too).
 */
import { IJupyterLabPageFixture } from '@jupyterlab/galata';
import type { Locator } from '@playwright/test';
import {
  KERNELS,
  RUNNING,
  expect,
  openGpuPanel,
  openNotebook,
  part,
  runFirstCell,
  shot,
  statusItem,
  test,
  toast
} from './fixtures';

/** Types `code` into `cell` and sees the kernel pre-started while no cell runs; `why` is the panel's reason. */
async function typeAndSeePrestart(
  page: IJupyterLabPageFixture,
  panel: Locator,
  cell: Locator,
  code: string,
  why: string
): Promise<void> {
  await cell.locator('.cm-content').click();
  await page.keyboard.type(code);
  // The slow kernelspec's start takes 8 s: long enough to see it starting while no cell runs.
  await expect(part(panel, 'panel-state')).toHaveText(/^Starting/, { timeout: 60_000 });
  await expect(part(panel, 'panel-prestart')).toHaveText('Pre-starting the GPU kernel because you started typing.');
  await expect(statusItem(page)).toHaveText(RUNNING, { timeout: 120_000 });
  await expect(part(panel, 'panel-prestart')).toContainText('Pre-started when you started typing');
  await expect(panel).toContainText(why);
  await expect(cell.locator('.jp-OutputArea-output')).toHaveCount(0); // the cell has not run
}

/** Runs `cell` (its editor has the focus) and sees it print 42 on the pre-started kernel, with no start of its
 * own (no progress line in the cell) and the kernel kept. */
async function runOnPrestarted(page: IJupyterLabPageFixture, panel: Locator, cell: Locator): Promise<void> {
  await page.keyboard.press('Shift+Enter');
  await expect(cell.locator('.jp-OutputArea-output')).toHaveText(/^\s*42\s*$/, { timeout: 60_000 });
  await expect(cell.locator('.jp-OutputArea-output').filter({ hasText: '[GPU (auto)]' })).toHaveCount(0);
  await expect(part(panel, 'panel-prestart')).not.toContainText('given back', { timeout: 30_000 });
  await expect(statusItem(page)).toHaveText(RUNNING);
}

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
  await typeAndSeePrestart(page, panel, next, 'print(x)', '(pre-started when you started typing)');
  await shot(page, 'ui-panel-prestarted');
  await runOnPrestarted(page, panel, next); // x was restored there
});

test('typing code into a fresh GPU (auto) notebook pre-starts its first GPU kernel, and the first cell runs on it', async ({
  page,
  tmpPath
}) => {
  const item = statusItem(page);
  await openNotebook(page, tmpPath, 'prestart-first.ipynb', KERNELS.gpuSlow, '');
  await expect(item).toHaveText('CPU only', { timeout: 120_000 });
  const panel = await openGpuPanel(page);
  await expect(part(panel, 'panel-state')).toHaveText('CPU only');
  // The notification is brief (3 s): watched from before it can appear, so a slow check cannot miss it.
  const note = toast(page, 'first kernel, pre-started');
  const seen = expect(note).toBeVisible({ timeout: 180_000 });
  const cell = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell').first();
  await typeAndSeePrestart(page, panel, cell, 'print(6 * 7)', '(first kernel, pre-started when you started typing code)');
  await seen;
  await expect(note).toHaveCount(0, { timeout: 6_000 }); // gone by itself, not after a start's 8 s
  await shot(page, 'ui-panel-prestarted-first');

  await cell.locator('.cm-content').click();
  await runOnPrestarted(page, panel, cell);
});
