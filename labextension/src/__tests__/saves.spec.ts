import { ISaves, noteProblem, notePlaceholder, revisionLine, saveLabel, savedNow, saveNotice } from '../saves';

const disk: ISaves = { git: false, review: false, branch: 'main', remote: '', problem: '' };
const direct: ISaves = { ...disk, git: true, remote: 'origin' };
const review: ISaves = { ...direct, review: true };

describe('admin saves: disk, Git commit, review branch', () => {
  it('labels the button with where the save goes', () => {
    expect(saveLabel(disk)).toBe('Save');
    expect(saveLabel(undefined)).toBe('Save');
    expect(saveLabel(direct)).toBe('Commit to main');
    expect(saveLabel(review)).toBe('Send for review');
  });

  it('requires a note only with Git', () => {
    expect(noteProblem(direct, '  ')).toMatch(/commit message/);
    expect(noteProblem(review, '')).toMatch(/note/);
    expect(noteProblem(direct, 'Longer idle timeout')).toBe('');
    expect(noteProblem(disk, '')).toBe('');
    expect(notePlaceholder(direct)).toMatch(/required/);
    expect(notePlaceholder(disk)).toMatch(/optional/);
  });

  it('says a review save was sent as its branch and keeps the file unsaved', () => {
    const answer = {
      sha256: 'x',
      version: { version: 'c0ffee' },
      message: 'Sent for review as mlp-kernel/alice/20261205T083001Z on origin: deployed once merged into main.',
      git: { commit: 'c0ffee', branch: 'mlp-kernel/alice/20261205T083001Z', review: true, path: 'k/policy.yaml' }
    };
    expect(saveNotice('policy.yaml', answer, null)).toBe(
      'policy.yaml: sent for review as mlp-kernel/alice/20261205T083001Z. It is deployed once merged.'
    );
    expect(savedNow(answer)).toBe(false);
  });

  it("shows the server's sentence for a commit, and the version for a disk save", () => {
    const commit = {
      sha256: 'x',
      version: { version: 'abc' },
      message: 'Committed abc to main and pushed to origin.',
      git: { commit: 'abc', branch: 'main', review: false, path: 'k/policy.yaml' }
    };
    expect(saveNotice('policy.yaml', commit, null)).toBe('policy.yaml: Committed abc to main and pushed to origin.');
    expect(savedNow(commit)).toBe(true);
    const saved = { sha256: 'x', version: { version: 'v1' } };
    expect(saveNotice('kernel.json', saved, null)).toBe('Saved kernel.json (version v1).');
    expect(saveNotice('kernel.json', saved, 'v0')).toBe('Rolled back kernel.json to version v0 (recorded as version v1).');
    expect(savedNow(saved)).toBe(true);
  });

  it('says which revision the branch has and which one the kernels use', () => {
    const c = 'a'.repeat(40);
    const at = { commit: c, branch: 'main', path: 'kernels/gpu-auto/policy.yaml' };
    expect(revisionLine({ ...at, deployed: c })).toBe(
      'kernels/gpu-auto/policy.yaml on main at aaaaaaaaaaaa, deployed: new kernels use it (the kernelspec is this checkout).'
    );
    expect(revisionLine({ ...at, deployed: 'b'.repeat(40) })).toMatch(/deployed: bbbbbbbbbbbb \(the checkout has not/);
    expect(revisionLine({ ...at, deployed: '' })).toMatch(/deployed when the GitOps sync .* applies main\.$/);
  });
});
