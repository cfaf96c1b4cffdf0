import { filesView, formatBytes } from '../files';
import { IFilesInfo } from '../types';

describe('the Files section', () => {
  it('names the workspace volume, its access, the directory and the packages volume', () => {
    const files: IFilesInfo = {
      mode: 'volume',
      message: "the notebook's directory /home/jovyan/work (volume claim home-alice, read-write); ...",
      working_dir: '/home/jovyan/work',
      workspace_claim: 'home-alice',
      workspace_path: '/home/jovyan',
      read_only: false,
      packages_claim: 'venv-alice',
      packages_path: '/opt/mlp/packages'
    };
    const view = filesView(files, true);
    expect(view.title).toBe('Files');
    expect(view.rows).toEqual([
      ['Sees', 'workspace volume home-alice (read-write)'],
      ['Directory', '/home/jovyan/work'],
      ['Packages', '/opt/mlp/packages (claim venv-alice)']
    ]);
    expect(view.sentence).toBe(files.message);
    expect(view.leftOut).toEqual([]);
    expect(filesView({ ...files, read_only: true }, false).rows[0][1]).toBe('workspace volume home-alice (read-only)');
    expect(filesView(files, false).title).toBe('Files (last GPU kernel)');
  });

  it('lists every file a copy left out with its reason, and counts the ones not listed', () => {
    const view = filesView(
      {
        mode: 'synced',
        message: 'copies in /tmp/k: ...',
        working_dir: '/tmp/k',
        files_taken: 2,
        bytes_taken: 33,
        left_out: [
          { path: '.env', reason: 'excluded' },
          { path: 'big.bin', reason: 'over the 1.0 KiB file cap' }
        ],
        left_out_count: 5
      },
      true
    );
    expect(view.rows[0]).toEqual(['Sees', 'copies: 2 files (33 B)']);
    expect(view.leftOut).toEqual([
      ['.env', 'excluded'],
      ['big.bin', 'over the 1.0 KiB file cap']
    ]);
    expect(view.more).toBe(3);
  });

  it('says when the kernel has none of the files, and the same disk on this machine', () => {
    expect(filesView({ mode: 'none', message: 'none ... (workspace_sync is off)' }, true).rows).toEqual([
      ['Sees', "none of the notebook's files"]
    ]);
    expect(filesView({ mode: 'local', message: 'x', working_dir: '/w' }, true).rows[0][1]).toBe("this machine's disk");
  });

  it('formats sizes as the gateway does', () => {
    expect(formatBytes(33)).toBe('33 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.0 GiB');
  });
});
