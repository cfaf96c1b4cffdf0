/**
 * The GPU panel's "Files" section: what the running (or last) GPU kernel sees of the notebook's files, from
 * the snapshot's `files` part (mlp_kernel/gateway/files.py builds it; docs/status-comm.md). Pure: the rows,
 * the explanation and the left-out list are computed here and tested without a DOM; panel.ts only draws them.
 */

import { IFilesInfo } from './types';

export interface IFilesView {
  /** "Files", or "Files (last GPU kernel)" once the kernel was released. */
  title: string;
  rows: [string, string][];
  /** The sentence `%gpu status` prints after "Files: ". */
  sentence: string;
  /** [path, reason] of each file a copy left out (the snapshot lists at most 50). */
  leftOut: [string, string][];
  /** How many more were left out than listed (files outside workspace_sync.include are only counted). */
  more: number;
}

export function formatBytes(n: number): string {
  for (const [unit, scale] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024]
  ] as [string, number][]) {
    if (n >= scale) {
      return `${(n / scale).toFixed(1)} ${unit}`;
    }
  }
  return `${n} B`;
}

function seen(f: IFilesInfo): string {
  switch (f.mode) {
    case 'volume':
      return `workspace volume ${f.workspace_claim ?? '?'} (${f.read_only ? 'read-only' : 'read-write'})`;
    case 'local':
      return "this machine's disk";
    case 'synced': {
      const n = f.files_taken ?? 0;
      return `copies: ${n} file${n === 1 ? '' : 's'} (${formatBytes(f.bytes_taken ?? 0)})`;
    }
    default:
      return "none of the notebook's files";
  }
}

export function filesView(files: IFilesInfo, running: boolean): IFilesView {
  const rows: [string, string][] = [['Sees', seen(files)]];
  if (files.working_dir) {
    rows.push(['Directory', files.working_dir]);
  }
  if (files.packages_claim) {
    rows.push(['Packages', `${files.packages_path ?? '?'} (claim ${files.packages_claim})`]);
  }
  const leftOut = (files.left_out ?? []).map(item => [item.path, item.reason] as [string, string]);
  return {
    title: running ? 'Files' : 'Files (last GPU kernel)',
    rows,
    sentence: files.message,
    leftOut,
    more: Math.max(0, (files.left_out_count ?? leftOut.length) - leftOut.length)
  };
}
