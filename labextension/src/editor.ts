/**
 * The admin page's file editor: JupyterLab's own CodeMirror editor (line numbers, YAML/JSON highlighting,
 * the user's editor settings) with the lines the server's validation names marked. Falls back to a plain
 * textarea when the application offers no editor services.
 */

import { StateEffect, StateField, RangeSetBuilder } from '@codemirror/state';
import { Decoration, DecorationSet, EditorView } from '@codemirror/view';
import { CodeEditor, IEditorServices } from '@jupyterlab/codeeditor';

const setErrorLines = StateEffect.define<number[]>();

/** Line decorations for the lines with errors, replaced whenever the server answers. */
const errorLines = StateField.define<DecorationSet>({
  create: () => Decoration.none,
  update(decorations, tr) {
    decorations = decorations.map(tr.changes);
    for (const effect of tr.effects) {
      if (effect.is(setErrorLines)) {
        const doc = tr.state.doc;
        const builder = new RangeSetBuilder<Decoration>();
        const lines = [...new Set(effect.value)].filter(n => n >= 1 && n <= doc.lines).sort((a, b) => a - b);
        for (const n of lines) {
          const from = doc.line(n).from;
          builder.add(from, from, Decoration.line({ class: 'mlp-kernel-Admin-errorLine' }));
        }
        decorations = builder.finish();
      }
    }
    return decorations;
  },
  provide: field => EditorView.decorations.from(field)
});

export interface IFileEditor {
  readonly node: HTMLElement;
  /** Marks these 1-based lines as errors (and clears the others). */
  markErrors(lines: number[]): void;
  goToLine(line: number): void;
  dispose(): void;
}

const MIME: Record<string, string> = { kernel: 'application/json', policy: 'text/x-yaml', pod_template: 'text/x-yaml' };

/** An editor of `text` (a file of this kind) that calls `onChange` with the new text on every edit. */
export function createFileEditor(
  services: IEditorServices | null,
  kind: string,
  text: string,
  onChange: (text: string) => void
): IFileEditor {
  const node = document.createElement('div');
  node.className = 'mlp-kernel-Admin-editor';
  node.setAttribute('data-mlp-kernel', 'editor');
  if (!services) {
    const area = document.createElement('textarea');
    area.className = 'mlp-kernel-Admin-textarea';
    area.spellcheck = false;
    area.value = text;
    area.addEventListener('input', () => onChange(area.value));
    node.appendChild(area);
    return {
      node,
      markErrors: () => undefined,
      goToLine: (line: number) => {
        const lines = area.value.split('\n');
        const start = lines.slice(0, line - 1).join('\n').length + (line > 1 ? 1 : 0);
        area.focus();
        area.setSelectionRange(start, start + (lines[line - 1] ?? '').length);
      },
      dispose: () => undefined
    };
  }
  const model = new CodeEditor.Model({ mimeType: MIME[kind] ?? 'text/plain' });
  model.sharedModel.setSource(text);
  model.sharedModel.changed.connect(() => onChange(model.sharedModel.getSource()));
  const editor = services.factoryService.newInlineEditor({
    host: node,
    model,
    config: { lineNumbers: true, lineWrap: false }
  });
  const view = (editor as unknown as { editor?: EditorView }).editor;
  const inject = (editor as unknown as { injectExtension?: (ext: unknown) => void }).injectExtension;
  if (view && inject) {
    inject.call(editor, errorLines);
  }
  return {
    node,
    markErrors: (lines: number[]) => view?.dispatch({ effects: setErrorLines.of(lines) }),
    goToLine: (line: number) => {
      editor.setCursorPosition({ line: line - 1, column: 0 });
      editor.revealPosition({ line: line - 1, column: 0 });
      editor.focus();
    },
    dispose: () => {
      editor.dispose();
      model.dispose();
    }
  };
}
