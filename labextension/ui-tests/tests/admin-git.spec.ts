/**
 * The admin page with saves through Git (docs/admin-guide.md, section 10c4), on the second server that
 * playwright.config.js starts for this file (project `git`): jupyter_server_test_config.py with
 * MLP_UI_TESTS_GIT=1 makes a bare repository (the Git server) holding kernels/gpu-auto, the server's clone of
 * it, and installs the gpu-auto kernelspec as that checkout. Every check of what was committed reads the bare
 * repository with `git` itself, never the server's answer. Each test reads the branch as it finds it, so the
 * tests pass in any order, alone or together.
 */
import { execFileSync } from 'child_process';
import * as path from 'path';
import { ADMIN, editorText, expect, fileTab, openAdmin, part, shot, test } from './fixtures';

const REMOTE = path.join(process.env.MLP_UI_TESTS_DIR ?? '', 'git-server', 'git', 'remote.git');
const POLICY = 'kernels/gpu-auto/policy.yaml';

/** `git --git-dir <the bare remote> <args>`'s output, trimmed. */
function git(...args: string[]): string {
  return execFileSync('git', ['--git-dir', REMOTE, ...args], { encoding: 'utf-8' }).trim();
}

test('a save is a commit by the admin with the note, and the page shows it deployed', async ({ page }) => {
  const before = git('rev-parse', 'main');
  const admin = await openAdmin(page);
  await expect(part(admin, 'git-mode')).toContainText('each is a commit on main');
  const editor = await fileTab(admin, 'policy.yaml');
  const revision = part(admin, 'revision');
  await expect(revision).toContainText(`${POLICY} on main at ${before.slice(0, 12)}, deployed`);

  const original = await editorText(editor);
  const minutes = Number(/^idle_timeout: (\d+)m\b/m.exec(original)?.[1]);
  expect(minutes, 'the policy has an idle_timeout in minutes').toBeGreaterThan(0);
  await editor.fill(original.replace(/^idle_timeout: \d+m\b/m, `idle_timeout: ${minutes + 1}m`));
  await expect(part(admin, 'valid')).toBeVisible();
  await part(admin, 'review').click();
  await expect(part(admin, 'diff')).toContainText(`+idle_timeout: ${minutes + 1}m`);
  await expect(part(admin, 'save-target')).toContainText('commits to main and pushes it to origin');
  const note = `Idle GPUs go back after ${minutes + 1} minutes: longer lunch breaks`;
  await part(admin, 'save-note').fill(note);
  await expect(part(admin, 'confirm-save')).toHaveText('Commit to main');
  await part(admin, 'confirm-save').click();

  await expect(part(admin, 'notice')).toContainText('Committed');
  const after = git('rev-parse', 'main');
  expect(after).not.toBe(before);
  await expect(part(admin, 'notice')).toContainText(`Committed ${after.slice(0, 12)} to main and pushed to origin`);
  await expect(revision).toContainText(`on main at ${after.slice(0, 12)}, deployed: new kernels use it`);
  expect(git('log', '-1', '--format=%an|%ae|%cn', 'main')).toBe(`${ADMIN}|${ADMIN}@example.com|mlp-kernel`);
  expect(git('log', '-1', '--format=%B', 'main')).toBe(note);
  expect(git('rev-parse', 'main~1')).toBe(before);
  expect(git('diff', '--name-only', 'main~1', 'main')).toBe(POLICY);
  expect(git('show', `main:${POLICY}`)).toContain(`idle_timeout: ${minutes + 1}m`);
  await expect(part(admin, 'dirty')).toHaveText('');
  await shot(page, 'ui-admin-git-committed');
});

test('a broken policy is refused with its line, and nothing is committed', async ({ page }) => {
  const before = git('rev-parse', 'main');
  const admin = await openAdmin(page);
  const editor = await fileTab(admin, 'policy.yaml');
  const original = await editorText(editor);
  expect(original).toContain('price_per_gpu_hour: 0');
  await editor.fill(original.replace('price_per_gpu_hour: 0', 'price_per_gpu_hour: cheap'));
  const issues = part(admin, 'issues');
  await expect(part(issues, 'invalid')).toBeVisible();
  await part(admin, 'review').click();

  // Without a note the page does not send it (the note is the commit message) ...
  await part(admin, 'confirm-save').click();
  await expect(part(admin, 'notice')).toContainText('Not saved: Write a note first');
  // ... and with one the server refuses the broken policy, naming the line.
  await part(admin, 'review').click();
  await part(admin, 'save-note').fill('Make GPUs cheap');
  await part(admin, 'confirm-save').click();
  await expect(part(admin, 'notice')).toContainText(/Not saved: policy\.yaml has \d+ error\(s\)/);
  const line = original.split('\n').findIndex(l => l.includes('price_per_gpu_hour: 0')) + 1;
  await expect(issues).toContainText(`line ${line}`);
  await expect(issues).toContainText('price_per_gpu_hour');
  await issues.locator('li').first().click(); // the issue jumps to its line, which is marked
  await expect(admin.locator('.cm-line.mlp-kernel-Admin-errorLine')).toContainText('price_per_gpu_hour: cheap');
  await shot(page, 'ui-admin-git-refused');
  expect(git('rev-parse', 'main')).toBe(before);
  expect(git('for-each-ref', '--format=%(refname)', 'refs/heads/')).toBe('refs/heads/main');
  expect(git('show', `main:${POLICY}`)).not.toContain('cheap');
});
