/**
 * The README's GPU (demo) kernelspec, found by its provisioner with no setting: the status bar item and the
 * panel work for it, and its AWS member (public, $4.10 per GPU-hour) shows what a paid placement looks like:
 * a notification with the price that stays until dismissed, and the item in the public state while it lasts.
 */
import { KERNELS, expect, openGpuPanel, openNotebook, part, runFirstCell, shot, statusItem, test, toast } from './fixtures';

test('a GPU (demo) notebook gets the status bar item and the panel', async ({ page, tmpPath }) => {
  await openNotebook(page, tmpPath, 'demo.ipynb', KERNELS.gpuDemo);
  await expect(statusItem(page)).toHaveText('CPU only', { timeout: 120_000 });
  const panel = await openGpuPanel(page);
  await expect(panel).not.toContainText('does not use');
  await expect(part(panel, 'panel-state')).toHaveText('CPU only');
  await expect(panel.locator('h2')).toHaveText('GPU (demo)'); // the kernelspec's own name, not "GPU (auto)"
  await shot(page, 'ui-demo-cpu-only');
});

test('a paid placement is announced with its price and shown as public', async ({ page, tmpPath }) => {
  await openNotebook(page, tmpPath, 'paid.ipynb', KERNELS.gpuDemo, '%gpu a100 burst=on budget=flex\nprint(6 * 7)');
  const item = statusItem(page);
  await runFirstCell(page);
  await expect(item).toHaveText(/^A100 ×1 · AWS · public \$4\.10\/h · (idle \d+:\d\d|busy)$/, { timeout: 180_000 });
  await expect(item).toHaveAttribute('data-public', 'true');
  const paid = toast(page, 'Paid GPU');
  await expect(paid).toContainText('$4.10/h');
  // The countdown ticks in the item itself, between snapshots.
  const before = await item.textContent();
  await expect(item).not.toHaveText(before!, { timeout: 5_000 });
  // Still there well after a success notification would have closed.
  await page.waitForTimeout(9_000);
  await expect(paid).toBeVisible();
  await shot(page, 'ui-status-public');
  // A user hides it to reach what it covers (the panel's lower buttons sit under the notifications).
  await paid.getByTitle('Hide notification').click();
  await expect(paid).toHaveCount(0);

  const panel = await openGpuPanel(page);
  await expect(part(panel, 'panel-where')).toContainText('public cloud: you pay $4.10/h');
  await expect(part(panel, 'panel-where')).toContainText('AWS');
  await expect(part(panel, 'change-gpu-choice')).toHaveValue('model:A100');
  // Burst is already on: no Allow burst button.
  await expect(part(panel, 'allow-burst')).toHaveCount(0);
  await shot(page, 'ui-panel-public');

  await part(panel, 'release').click();
  await expect(item).toHaveText('Released (by you)', { timeout: 120_000 });
  await expect(item).toHaveAttribute('data-public', 'false');
  await expect(part(panel, 'panel-cost')).toContainText(/Notebook total\$\d+\.\d\d/);
});

test('Allow burst is offered while burst is off, and says what it did', async ({ page, tmpPath }) => {
  await openNotebook(page, tmpPath, 'burst.ipynb', KERNELS.gpuDemo);
  await expect(statusItem(page)).toHaveText('CPU only', { timeout: 120_000 });
  const panel = await openGpuPanel(page);
  await part(panel, 'allow-burst').click();
  await expect(part(panel, 'panel-notice')).toContainText('Burst allowed');
  await expect(part(panel, 'allow-burst')).toHaveCount(0, { timeout: 30_000 });
  await shot(page, 'ui-panel-burst-allowed');
  // Change GPU says what it asked for, and the request follows.
  await part(panel, 'change-gpu-choice').selectOption('tier:silver');
  await part(panel, 'change-gpu').click();
  await expect(part(panel, 'panel-notice')).toContainText('Asked for tier silver (%gpu tier=silver)');
  await part(panel, 'panel-request').locator('summary').click();
  await expect(part(panel, 'panel-request')).toContainText(/Tier\s*silver/);
  await expect(part(panel, 'change-gpu-choice')).toHaveValue('tier:silver');
});

test('after %gpu idle=1m the panel states the flat rule', async ({ page, tmpPath }) => {
  await openNotebook(page, tmpPath, 'idle.ipynb', KERNELS.gpuDemo, '%gpu idle=1m');
  await expect(statusItem(page)).toHaveText('CPU only', { timeout: 120_000 });
  await runFirstCell(page);
  const panel = await openGpuPanel(page);
  await expect(panel).toContainText('Idle release: after 1 min idle.', { timeout: 60_000 });
  await expect(panel).not.toContainText('the more GPUs');
});
