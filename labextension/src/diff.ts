/**
 * Line diff for the admin page's "review before saving" step. Pure (jest-tested): an LCS over lines,
 * grouped into hunks with a few lines of context, like `diff -u`, so an admin sees exactly what changes.
 */

export type DiffOp = { kind: 'same' | 'add' | 'del'; text: string; oldLine?: number; newLine?: number };

export function lineDiff(before: string, after: string): DiffOp[] {
  const a = before.split('\n');
  const b = after.split('\n');
  const n = a.length;
  const m = b.length;
  // lengths[i][j] = LCS length of a[i:], b[j:]
  const lengths: Uint32Array[] = [];
  for (let i = 0; i <= n; i++) {
    lengths.push(new Uint32Array(m + 1));
  }
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lengths[i][j] =
        a[i] === b[j] ? lengths[i + 1][j + 1] + 1 : Math.max(lengths[i + 1][j], lengths[i][j + 1]);
    }
  }
  const ops: DiffOp[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      ops.push({ kind: 'same', text: a[i], oldLine: i + 1, newLine: j + 1 });
      i++;
      j++;
    } else if (i < n && (j >= m || lengths[i + 1][j] >= lengths[i][j + 1])) {
      ops.push({ kind: 'del', text: a[i], oldLine: i + 1 });
      i++;
    } else {
      ops.push({ kind: 'add', text: b[j], newLine: j + 1 });
      j++;
    }
  }
  return ops;
}

/** Unified-diff text with `context` lines around changes; "" when nothing changed. */
export function unifiedDiff(before: string, after: string, context = 3): string {
  const ops = lineDiff(before, after);
  const changed = ops.map(o => o.kind !== 'same');
  if (!changed.some(Boolean)) {
    return '';
  }
  const keep = ops.map((_, k) => {
    for (let d = -context; d <= context; d++) {
      if (changed[k + d]) {
        return true;
      }
    }
    return false;
  });
  const out: string[] = [];
  let k = 0;
  while (k < ops.length) {
    if (!keep[k]) {
      k++;
      continue;
    }
    const start = k;
    while (k < ops.length && keep[k]) {
      k++;
    }
    const hunk = ops.slice(start, k);
    const oldStart = hunk.find(o => o.oldLine)?.oldLine ?? 0;
    const newStart = hunk.find(o => o.newLine)?.newLine ?? 0;
    const oldCount = hunk.filter(o => o.kind !== 'add').length;
    const newCount = hunk.filter(o => o.kind !== 'del').length;
    out.push(`@@ -${oldStart},${oldCount} +${newStart},${newCount} @@`);
    for (const o of hunk) {
      out.push((o.kind === 'add' ? '+' : o.kind === 'del' ? '-' : ' ') + o.text);
    }
  }
  return out.join('\n');
}
