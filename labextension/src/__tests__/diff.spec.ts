import { lineDiff, unifiedDiff } from '../diff';

describe('lineDiff', () => {
  it('finds no change in equal texts', () => {
    expect(lineDiff('a\nb', 'a\nb').every(o => o.kind === 'same')).toBe(true);
    expect(unifiedDiff('a\nb', 'a\nb')).toBe('');
  });

  it('marks a changed line as deleted then added', () => {
    const ops = lineDiff('a\nb\nc', 'a\nB\nc');
    expect(ops.map(o => `${o.kind}:${o.text}`)).toEqual(['same:a', 'del:b', 'add:B', 'same:c']);
  });

  it('numbers lines on both sides', () => {
    const ops = lineDiff('a\nc', 'a\nb\nc');
    expect(ops[1]).toEqual({ kind: 'add', text: 'b', newLine: 2 });
    expect(ops[2]).toEqual({ kind: 'same', text: 'c', oldLine: 2, newLine: 3 });
  });
});

describe('unifiedDiff', () => {
  it('shows only the changed region with context', () => {
    const before = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join('\n');
    const after = before.replace('line 10', 'line ten');
    expect(unifiedDiff(before, after, 1)).toBe(
      ['@@ -9,3 +9,3 @@', ' line 9', '-line 10', '+line ten', ' line 11'].join('\n')
    );
  });

  it('makes separate hunks for distant changes', () => {
    const before = Array.from({ length: 30 }, (_, i) => `l${i}`).join('\n');
    const after = before.replace('l2\n', 'x\n').replace('l25', 'y');
    expect(unifiedDiff(before, after, 2).match(/^@@/gm)).toHaveLength(2);
  });
});
