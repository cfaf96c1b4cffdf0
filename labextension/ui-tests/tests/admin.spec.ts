/**
 * The admin page (command palette: "GPU (auto) admin"): checking, reviewing and saving the policy as an admin,
 * a dry-run render of an unsaved kernel.json, the fleet, and a non-admin's refused save. The tests that save
 * use the `policyFile` fixture, which puts policy.yaml back afterwards.
 */
import * as fs from 'fs';
import {
  Session,
  USER,
  editorText,
  expect,
  fileTab,
  openAdmin,
  openNotebook,
  part,
  shot,
  statusItem,
  test
} from './fixtures';

test('an admin breaks the policy, sees the error, then saves a fix', async ({ page, policyFile }) => {
  const admin = await openAdmin(page);
  let editor = await fileTab(admin, 'policy.yaml');
  await expect(part(admin, 'valid')).toBeVisible();
  const original = await editorText(editor);
  await editor.fill(original.replace('price_per_gpu_hour: 0', 'price_per_gpu_hour: cheap'));
  const issues = part(admin, 'issues');
  await expect(part(issues, 'invalid')).toBeVisible();
  await expect(issues).toContainText('price_per_gpu_hour');
  await expect(issues).toContainText(/line \d+/);
  // JupyterLab's editor: line numbers, and the line the server named is marked; its issue jumps there.
  await expect(admin.locator('.cm-lineNumbers')).toBeVisible();
  await issues.locator('li').first().click();
  const marked = admin.locator('.cm-line.mlp-kernel-Admin-errorLine');
  await expect(marked).toHaveCount(1);
  await expect(marked).toContainText('price_per_gpu_hour: cheap');
  await shot(page, 'ui-admin-policy-error');

  await part(admin, 'review').click();
  await expect(part(admin, 'diff')).toContainText('+    price_per_gpu_hour: cheap');
  await part(admin, 'confirm-save').click();
  await expect(part(admin, 'notice')).toContainText('Not saved');
  expect(fs.readFileSync(policyFile, 'utf-8')).not.toContain('cheap');

  editor = await fileTab(admin, 'policy.yaml');
  await editor.fill(original.replace('idle_timeout: 15m', 'idle_timeout: 16m'));
  await expect(part(admin, 'valid')).toBeVisible();
  await part(admin, 'review').click();
  await expect(part(admin, 'diff')).toContainText('+idle_timeout: 16m');
  await shot(page, 'ui-admin-diff');
  await part(admin, 'confirm-save').click();
  await expect(part(admin, 'notice')).toContainText('Saved policy.yaml');
  expect(fs.readFileSync(policyFile, 'utf-8')).toContain('idle_timeout: 16m');
  await shot(page, 'ui-admin-saved');
});

test('a rollback from the history is recorded as a rollback, by name', async ({ page, policyFile }) => {
  const admin = await openAdmin(page);
  const editor = await fileTab(admin, 'policy.yaml');
  const original = await editorText(editor);
  await editor.fill(original.replace('idle_timeout: 15m', 'idle_timeout: 17m'));
  await expect(part(admin, 'valid')).toBeVisible();
  await part(admin, 'review').click();
  await part(admin, 'confirm-save').click();
  await expect(part(admin, 'notice')).toContainText('Saved policy.yaml');

  await admin.getByText('History', { exact: true }).click();
  const history = part(admin, 'history');
  // The version that was on disk before the save: load it, review, save.
  await history.locator('tr').filter({ hasText: 'original' }).first().getByRole('button', { name: 'Load into editor' }).click();
  await expect.poll(() => editorText(editor)).toBe(original);
  await part(admin, 'review').click();
  await part(admin, 'confirm-save').click();
  await expect(part(admin, 'notice')).toContainText('Rolled back policy.yaml');
  expect(fs.readFileSync(policyFile, 'utf-8')).toBe(original);
  await admin.getByText('History', { exact: true }).click();
  const newest = part(admin, 'history').locator('tr').nth(1);
  await expect(newest).toContainText('rollback');
  await expect(newest).toContainText('alice');
  await shot(page, 'ui-admin-rollback');
});

test('a dry run renders the Pod of an unsaved kernel.json', async ({ page }) => {
  const admin = await openAdmin(page);
  // Unsaved: kernel.json pointed at the platform policy (private/aws members).
  const editor = await fileTab(admin, 'kernel.json');
  const platform = (await editorText(editor)).replace('"policy": "policy.yaml"', '"policy": "platform-policy.yaml"');
  expect(platform).toContain('platform-policy.yaml');
  await editor.fill(platform);
  await expect(part(admin, 'valid')).toBeVisible();
  await admin.getByText('Dry run: render the Pod').click();
  // The select offers what the draft's policy can render: its members with their own flavors.
  const target = part(admin, 'render-target');
  await expect(target.locator('option[value="private/silver"]')).toHaveCount(1);
  await expect(target.locator('option[value="private/gold"]')).toHaveCount(0);
  await target.selectOption('private/silver');
  await part(admin, 'render').click();
  const output = part(admin, 'render-output');
  await expect(output).toContainText('"kind": "Pod"');
  await expect(output).toContainText('"mlp.io/flavor": "silver"');
  await output.scrollIntoViewIfNeeded();
  await shot(page, 'ui-admin-render');
});

test('out of the box the dry run says why nothing can be rendered', async ({ page }) => {
  const admin = await openAdmin(page);
  await fileTab(admin, 'kernel.json');
  await admin.getByText('Dry run: render the Pod').click();
  await expect(part(admin, 'render-note')).toContainText("'local'");
  await expect(part(admin, 'render-note')).toContainText('namespace and local_queue');
  await expect(part(admin, 'render')).toBeDisabled();
  await shot(page, 'ui-admin-render-none');
});

test('every GPU kernelspec is offered, the demo one with its own policy', async ({ page }) => {
  const admin = await openAdmin(page);
  const picker = part(admin, 'kernelspec');
  await expect(picker.locator('option')).toHaveText([
    'GPU (auto) (gpu-auto)',
    'GPU (broken) (gpu-broken)',
    'GPU (burst) (gpu-burst)',
    'GPU (demo) (gpu-demo)',
    'GPU (queue) (gpu-queue)',
    'GPU (slow start) (gpu-slow)'
  ]);
  await picker.selectOption('gpu-demo');
  const editor = await fileTab(admin, 'demo-policy.yaml');
  await expect.poll(() => editorText(editor)).toContain('display_name: AWS');
  await admin.getByText('Dry run: render the Pod').click();
  await expect(part(admin, 'render-note')).toContainText("'private', 'aws'");
  await shot(page, 'ui-admin-kernelspecs');
});

test('the fleet lists a running GPU (auto) kernel', async ({ page, request, tmpPath }) => {
  const file = await openNotebook(page, tmpPath, 'fleet.ipynb');
  await expect(statusItem(page)).toHaveText('CPU only', { timeout: 120_000 });
  const sessions: Session[] = await (await request.get('api/sessions')).json();
  const session = sessions.find(s => s.path === file);
  expect(session, `no session for ${file}`).toBeTruthy();

  const admin = await openAdmin(page);
  await admin.locator('[data-mlp-kernel-tab="fleet"]').click();
  const row = part(admin, 'fleet').locator('table tr').filter({ hasText: session!.kernel.id.slice(0, 8) });
  await expect(row).toContainText(/released|running|cpu_only/);
  await shot(page, 'ui-admin-fleet');
});

test.describe('as a non-admin', () => {
  test.use({ user: USER });

  test('can view and check, but Save is disabled (the server refuses it anyway: tests/server)', async ({
    page,
    policyFile
  }) => {
    const admin = await openAdmin(page);
    await expect(part(admin, 'read-only')).toContainText(USER);
    const editor = await fileTab(admin, 'policy.yaml');
    const before = fs.readFileSync(policyFile, 'utf-8');
    await editor.fill((await editorText(editor)) + '\n# bob was here\n');
    await expect(part(admin, 'valid')).toBeVisible();
    await expect(part(admin, 'review')).toBeDisabled();
    expect(fs.readFileSync(policyFile, 'utf-8')).toBe(before);
    await shot(page, 'ui-admin-refused');
  });
});
