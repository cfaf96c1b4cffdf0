/**
 * The admin page: view and edit the GPU (auto) kernelspec files (pod template, kernel defaults i.e.
 * kernel.json, placement policy) with server-side validation while typing (debounced) and on save, a
 * dry-run render of the Pod, a diff before saving, history with rollback, and the fleet of GPU kernels.
 * Who may save is decided by the server (HTTP 403 otherwise); the page only shows what it says. Each save
 * asks for a note: with Git (`MlpKernelExtension.git_repo`) it is the commit message and required, and a
 * save may be sent for review as a branch (the page says which); without Git it goes to the audit log.
 */

import { IEditorServices } from '@jupyterlab/codeeditor';
import { Widget } from '@lumino/widgets';

import { unifiedDiff } from './diff';
import { createFileEditor, IFileEditor } from './editor';
import { h, replaceChildren } from './dom';
import { formatCost, formatDuration } from './format';
import { ApiError, IIssue, postJSON, requestAPI } from './request';
import {
  IGitRevision,
  ISaveAnswer,
  ISaves,
  notePlaceholder,
  noteProblem,
  revisionLine,
  saveLabel,
  savedNow,
  saveNotice
} from './saves';

interface IFileInfo {
  file: string;
  kind: 'kernel' | 'pod_template' | 'policy';
}

interface IFileState {
  info: IFileInfo;
  saved: string;
  sha256: string;
  text: string;
  issues: IIssue[];
  validating: boolean;
  /** The history version loaded into the editor: saving that text unchanged is a rollback, recorded so. */
  loaded?: { version: string; text: string };
  /** With Git: the branch's revision of the file and the deployed one (shown under the editor). */
  git?: IGitRevision;
}

interface IVersion {
  version: string;
  at: string;
  user: string;
  action: string;
  sha256: string;
  size: number;
}

interface IFleetKernel {
  kernel_id: string;
  user: string;
  state: string;
  member: string | null;
  flavor: string | null;
  gpu_model: string | null;
  gpu_count: number;
  since: string | null;
  cost_so_far: number;
  public: boolean;
}

const KIND_LABEL: Record<string, string> = {
  pod_template: 'Pod template',
  kernel: 'Kernel defaults',
  policy: 'Placement policy'
};

const VALIDATE_DELAY_MS = 600;

/** The lines of the errors (not warnings) among `issues`, which the editor marks. */
function errorLineNumbers(issues: IIssue[]): number[] {
  return issues.filter(i => i.severity !== 'warning' && i.line).map(i => i.line as number);
}

export class AdminWidget extends Widget {
  constructor(
    private kernelspec = '',
    private editorServices: IEditorServices | null = null
  ) {
    super();
    this.id = 'mlp-kernel-admin';
    this.addClass('mlp-kernel-Admin');
    this.title.label = 'GPU (auto) admin';
    this.title.closable = true;
    void this._load();
  }

  private async _load(): Promise<void> {
    replaceChildren(this.node, h('p', {}, 'Loading…'));
    try {
      this._me = await requestAPI('me');
      // Every kernelspec that uses our provisioner (the server finds them); the first one unless chosen.
      const listed = await requestAPI<{ kernelspecs: { name: string; display_name: string }[] }>('kernelspecs');
      this._specs = listed.kernelspecs;
      if (!this._specs.length) {
        replaceChildren(
          this.node,
          h('h1', {}, 'GPU (auto) administration'),
          h(
            'p',
            { className: 'mlp-kernel-warning' },
            'No kernelspec on this server uses the gpu-auto-provisioner: install one with `mlp-kernel install`.'
          )
        );
        return;
      }
      if (!this._specs.some(k => k.name === this.kernelspec)) {
        this.kernelspec = this._specs[0].name;
      }
      const spec = await requestAPI<{ files: IFileInfo[] }>(`kernelspecs/${this.kernelspec}`);
      this._files.clear();
      this._history.clear();
      const order = ['pod_template', 'kernel', 'policy'];
      const files = [...spec.files].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
      for (const info of files) {
        const f = await this._read(info.file);
        this._files.set(info.file, {
          info,
          saved: f.content,
          sha256: f.sha256,
          text: f.content,
          issues: [],
          validating: false,
          git: f.git
        });
      }
      this._tab = this._tab || files[0]?.file || 'fleet';
    } catch (error) {
      replaceChildren(this.node, h('p', { className: 'mlp-kernel-error' }, `Cannot load: ${describe(error)}`));
      return;
    }
    this._render();
    const current = this._files.get(this._tab);
    if (current) {
      void this._validate(current);
    }
  }

  private _read(file: string): Promise<{ content: string; sha256: string; git?: IGitRevision }> {
    return requestAPI(`kernelspecs/${this.kernelspec}/files/${file}`);
  }

  private _render(): void {
    const me = this._me;
    const banner = me?.is_admin
      ? h('p', { className: 'mlp-kernel-Admin-who' }, `Signed in as ${me.name || me.username} (admin).`)
      : h(
          'p',
          { className: 'mlp-kernel-Admin-who mlp-kernel-warning', 'data-mlp-kernel': 'read-only' },
          `Signed in as ${me?.name || me?.username || '?'}: you can view and check, but the server will refuse saving (${
            me?.why_not || 'not an admin'
          }).`
        );
    const saves = me?.saves;
    const gitLine = saves?.problem
      ? h('p', { className: 'mlp-kernel-Admin-who mlp-kernel-warning' }, `Saves are refused: ${saves.problem}.`)
      : saves?.git
        ? h(
            'p',
            { className: 'mlp-kernel-Admin-who', 'data-mlp-kernel': 'git-mode' },
            saves.review
              ? `Saves go through Git: each is pushed as a branch for review into ${saves.branch}.`
              : `Saves go through Git: each is a commit on ${saves.branch}.`
          )
        : '';
    const tabs = h('div', { className: 'mlp-kernel-Admin-tabs', role: 'tablist' });
    const names = [...this._files.keys(), 'fleet'];
    for (const name of names) {
      const label = name === 'fleet' ? 'Fleet' : `${KIND_LABEL[this._files.get(name)!.info.kind]} (${name})`;
      tabs.appendChild(
        h(
          'button',
          {
            className: `jp-mod-styled ${name === this._tab ? 'jp-mod-accept' : ''}`,
            role: 'tab',
            'data-mlp-kernel-tab': name,
            onclick: () => {
              this._tab = name;
              this._notice = '';
              this._render();
              const f = this._files.get(name);
              if (f) {
                void this._validate(f);
              }
            }
          },
          label
        )
      );
    }
    const body = this._tab === 'fleet' ? this._fleetView() : this._fileView(this._files.get(this._tab)!);
    const picker = h('select', { 'data-mlp-kernel': 'kernelspec' });
    for (const k of this._specs) {
      picker.appendChild(h('option', { value: k.name }, `${k.display_name} (${k.name})`));
    }
    picker.value = this.kernelspec;
    picker.addEventListener('change', () => {
      const dirty = [...this._files.values()].some(f => f.text !== f.saved);
      if (dirty && !window.confirm('Discard your unsaved edits of this kernelspec?')) {
        picker.value = this.kernelspec;
        return;
      }
      this.kernelspec = picker.value;
      this._tab = '';
      void this._load();
    });
    replaceChildren(
      this.node,
      h('h1', {}, 'GPU (auto) administration'),
      banner,
      gitLine,
      h('label', { className: 'mlp-kernel-Admin-spec' }, 'Kernelspec ', picker),
      tabs,
      body
    );
  }

  private _fileView(f: IFileState): HTMLElement {
    this._editor?.dispose();
    const editor = createFileEditor(this.editorServices, f.info.kind, f.text, text => {
      f.text = text;
      window.clearTimeout(this._debounce);
      this._debounce = window.setTimeout(() => void this._validate(f), VALIDATE_DELAY_MS);
      this._updateDirty(f);
    });
    this._editor = editor;
    // a new editor (after a refused save, a tab switch) marks the lines the last check found at once
    editor.markErrors(errorLineNumbers(f.issues));
    return h(
      'div',
      { className: 'mlp-kernel-Admin-file' },
      editor.node,
      f.git ? h('p', { className: 'mlp-kernel-Admin-who', 'data-mlp-kernel': 'revision' }, revisionLine(f.git)) : null,
      h('div', { className: 'mlp-kernel-Admin-issues', 'data-mlp-kernel': 'issues' }, ...this._issueNodes(f)),
      h(
        'div',
        { className: 'mlp-kernel-Admin-buttons' },
        h(
          'button',
          {
            className: 'jp-mod-styled jp-mod-accept',
            'data-mlp-kernel': 'review',
            disabled: !this._me?.is_admin,
            title: this._me?.is_admin ? 'Show the diff, then save' : 'Only mlp-kernel admins may save',
            onclick: () => this._review(f)
          },
          'Review and save…'
        ),
        h(
          'button',
          {
            className: 'jp-mod-styled',
            'data-mlp-kernel': 'revert',
            onclick: () => {
              f.text = f.saved;
              this._render();
              void this._validate(f);
            }
          },
          'Revert'
        ),
        h('span', { className: 'mlp-kernel-Admin-dirty', 'data-mlp-kernel': 'dirty' }, f.text !== f.saved ? 'modified' : '')
      ),
      h('div', { className: 'mlp-kernel-Admin-review', 'data-mlp-kernel': 'review-area' }),
      this._notice
        ? h(
            'p',
            { className: `mlp-kernel-notice ${this._noticeIsError ? 'mlp-kernel-error' : 'mlp-kernel-ok'}`, 'data-mlp-kernel': 'notice' },
            this._notice
          )
        : null,
      this._renderForm(),
      this._historyView(f)
    );
  }

  private _updateDirty(f: IFileState): void {
    const el = this.node.querySelector('[data-mlp-kernel="dirty"]');
    if (el) {
      el.textContent = f.text !== f.saved ? 'modified' : '';
    }
  }

  private _issueNodes(f: IFileState): HTMLElement[] {
    if (f.validating && !f.issues.length) {
      return [h('p', {}, 'Checking…')];
    }
    const errors = f.issues.filter(i => i.severity !== 'warning');
    const head = errors.length
      ? h('p', { className: 'mlp-kernel-error', 'data-mlp-kernel': 'invalid' }, `${errors.length} error(s):`)
      : h('p', { className: 'mlp-kernel-ok', 'data-mlp-kernel': 'valid' }, '✓ Valid');
    const items = f.issues.map(i =>
      h(
        'li',
        {
          className: i.severity === 'warning' ? 'mlp-kernel-warning' : 'mlp-kernel-error',
          onclick: () => i.line && this._goToLine(i.line)
        },
        i.line ? `line ${i.line}` : 'file',
        i.field ? ` · ${i.field}` : '',
        `: ${i.message}`
      )
    );
    return [head, h('ul', {}, ...items)];
  }

  private _goToLine(line: number): void {
    this._editor?.goToLine(line);
  }

  private async _validate(f: IFileState): Promise<void> {
    const text = f.text;
    f.validating = true;
    try {
      const r = await postJSON<{ issues: IIssue[] }>(
        `kernelspecs/${this.kernelspec}/files/${f.info.file}/validate`,
        { content: text }
      );
      if (text === f.text) {
        f.issues = r.issues;
      }
    } catch (error) {
      f.issues = [{ message: `Validation failed: ${describe(error)}`, severity: 'error' }];
    } finally {
      f.validating = false;
    }
    const el = this.node.querySelector('[data-mlp-kernel="issues"]');
    if (el && this._tab === f.info.file) {
      replaceChildren(el, ...this._issueNodes(f));
      this._editor?.markErrors(errorLineNumbers(f.issues));
    }
  }

  private _review(f: IFileState): void {
    const area = this.node.querySelector('[data-mlp-kernel="review-area"]');
    if (!area) {
      return;
    }
    const diff = unifiedDiff(f.saved, f.text);
    if (!diff) {
      replaceChildren(area, h('p', {}, 'No changes to save.'));
      return;
    }
    const pre = h('pre', { className: 'mlp-kernel-Admin-diff', 'data-mlp-kernel': 'diff' });
    for (const line of diff.split('\n')) {
      const cls = line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : line.startsWith('@@') ? 'hunk' : '';
      pre.appendChild(h('div', { className: `mlp-kernel-diff-${cls}` }, line));
    }
    const saves = this._me?.saves;
    const note = h('textarea', {
      className: 'mlp-kernel-Admin-note',
      'data-mlp-kernel': 'save-note',
      rows: '2',
      placeholder: notePlaceholder(saves)
    });
    const where = saves?.git
      ? h(
          'p',
          { 'data-mlp-kernel': 'save-target' },
          saves.review
            ? `Saving pushes a new branch for review (a merge request into ${saves.branch}).`
            : `Saving commits to ${saves.branch}${saves.remote ? ` and pushes it to ${saves.remote}` : ''}.`
        )
      : '';
    replaceChildren(
      area,
      h('h3', {}, `Changes to ${f.info.file}`),
      pre,
      where,
      note,
      h(
        'button',
        {
          className: 'jp-mod-styled jp-mod-accept',
          'data-mlp-kernel': 'confirm-save',
          disabled: !this._me?.is_admin,
          onclick: () => void this._save(f, note.value)
        },
        saveLabel(saves)
      ),
      h('button', { className: 'jp-mod-styled', onclick: () => replaceChildren(area) }, 'Cancel')
    );
  }

  private async _save(f: IFileState, note: string): Promise<void> {
    const problem = noteProblem(this._me?.saves, note);
    if (problem) {
      this._notice = `Not saved: ${problem}`;
      this._noticeIsError = true;
      this._render();
      return;
    }
    try {
      const base = `kernelspecs/${this.kernelspec}/files/${f.info.file}`;
      const rollback = f.loaded && f.loaded.text === f.text ? f.loaded.version : null;
      const r = rollback
        ? await postJSON<ISaveAnswer>(`${base}/rollback`, { version: rollback, note, base_sha256: f.sha256 })
        : await postJSON<ISaveAnswer>(base, { content: f.text, base_sha256: f.sha256, note }, 'PUT');
      // sent for review, the branch still has the old text: the edit stays "modified" against it
      if (savedNow(r)) {
        f.saved = f.text;
        f.sha256 = r.sha256;
        f.loaded = undefined;
      }
      this._notice = saveNotice(f.info.file, r, rollback);
      this._noticeIsError = false;
      if (f.git) {
        // the branch's new revision, and whether it is deployed (a failed read keeps the old line, not the save)
        f.git = (await this._read(f.info.file).catch(() => ({ git: f.git }))).git;
      }
    } catch (error) {
      if (error instanceof ApiError && error.issues.length) {
        f.issues = error.issues;
      }
      const prefix = error instanceof ApiError && error.status === 403 ? 'Saving refused' : 'Not saved';
      this._notice = `${prefix}: ${describe(error)}`;
      this._noticeIsError = true;
    }
    this._history.delete(f.info.file);
    this._render();
  }

  private _renderForm(): HTMLElement {
    // Only what can be rendered: the (member, flavor) pairs of the policy the draft kernel.json names, asked
    // of the server for the unsaved texts (the shipped local policy has none, and the note says why).
    const target = h('select', { 'data-mlp-kernel': 'render-target' });
    const note = h('p', { className: 'mlp-kernel-warning', 'data-mlp-kernel': 'render-note' });
    const drafts = (): Record<string, string> => {
      const files: Record<string, string> = {};
      for (const [name, f] of this._files) {
        if (f.text !== f.saved) {
          files[name] = f.text;
        }
      }
      return files;
    };
    const loadTargets = async (): Promise<void> => {
      replaceChildren(target);
      note.textContent = 'Reading the policy…';
      try {
        const r = await postJSON<{ render_targets: { member: string; flavor: string }[]; render_note: string }>(
          `kernelspecs/${this.kernelspec}/render/targets`,
          { files: drafts() }
        );
        for (const t of r.render_targets) {
          target.appendChild(h('option', { value: `${t.member}/${t.flavor}` }, `${t.member} / ${t.flavor}`));
        }
        note.textContent = r.render_note;
      } catch (error) {
        note.textContent = describe(error);
      }
      renderButton.disabled = !target.options.length;
      target.hidden = !target.options.length;
    };
    const user = h('input', { type: 'text', placeholder: 'user (default: you)', 'data-mlp-kernel': 'render-user' });
    const out = h('div', { 'data-mlp-kernel': 'render-output' });
    const run = async (): Promise<void> => {
      replaceChildren(out, h('p', {}, 'Rendering…'));
      const files = drafts();
      const [member, flavor] = target.value.split('/');
      try {
        const r = await postJSON<{ pod: unknown; secret: unknown }>(`kernelspecs/${this.kernelspec}/render`, {
          member,
          flavor,
          user: user.value || undefined,
          files
        });
        replaceChildren(out, h('pre', { className: 'mlp-kernel-Admin-render' }, JSON.stringify(r.pod, null, 2)));
      } catch (error) {
        const issues = error instanceof ApiError ? error.issues : [];
        replaceChildren(
          out,
          h('p', { className: 'mlp-kernel-error' }, describe(error)),
          h('ul', {}, ...issues.map(i => h('li', {}, i.line ? `line ${i.line}: ${i.message}` : i.message)))
        );
      }
    };
    const renderButton = h(
      'button',
      { className: 'jp-mod-styled', 'data-mlp-kernel': 'render', disabled: true, onclick: () => void run() },
      'Render'
    );
    const section = h(
      'details',
      { className: 'mlp-kernel-Admin-section' },
      h('summary', {}, 'Dry run: render the Pod (uses your unsaved edits)'),
      h('label', {}, 'Member / flavor ', target),
      h('label', {}, ' ', user),
      renderButton,
      note,
      out
    );
    section.addEventListener('toggle', () => section.open && void loadTargets());
    return section;
  }

  private _historyView(f: IFileState): HTMLElement {
    const list = h('div', { 'data-mlp-kernel': 'history' });
    const details = h(
      'details',
      { className: 'mlp-kernel-Admin-section' },
      h('summary', {}, 'History'),
      list
    ) as HTMLDetailsElement;
    details.addEventListener('toggle', () => {
      if (details.open) {
        void this._loadHistory(f, list);
      }
    });
    return details;
  }

  private async _loadHistory(f: IFileState, list: HTMLElement): Promise<void> {
    try {
      const r = await requestAPI<{ versions: IVersion[] }>(
        `kernelspecs/${this.kernelspec}/files/${f.info.file}/history`
      );
      if (!r.versions.length) {
        replaceChildren(list, h('p', {}, 'No saved versions yet.'));
        return;
      }
      const rows = r.versions.map(v =>
        h(
          'tr',
          {},
          h('td', {}, new Date(v.at).toLocaleString()),
          h('td', {}, v.user),
          h('td', {}, v.action),
          h('td', {}, v.sha256.slice(0, 12)),
          h(
            'td',
            {},
            h(
              'button',
              {
                className: 'jp-mod-styled',
                onclick: async () => {
                  const old = await requestAPI<{ content: string }>(
                    `kernelspecs/${this.kernelspec}/files/${f.info.file}/history/${v.version}`
                  );
                  f.text = old.content;
                  f.loaded = { version: v.version, text: old.content };
                  this._notice = `Loaded version ${v.version} into the editor: review and save to roll back.`;
                  this._noticeIsError = false;
                  this._render();
                  void this._validate(f);
                }
              },
              'Load into editor'
            )
          )
        )
      );
      replaceChildren(
        list,
        h('table', { className: 'mlp-kernel-Admin-table' }, h('tr', {}, ...['When', 'Who', 'What', 'sha256', ''].map(t => h('th', {}, t))), ...rows)
      );
    } catch (error) {
      replaceChildren(list, h('p', { className: 'mlp-kernel-error' }, describe(error)));
    }
  }

  private _fleetView(): HTMLElement {
    const out = h('div', { 'data-mlp-kernel': 'fleet' }, h('p', {}, 'Loading…'));
    const load = async (): Promise<void> => {
      try {
        const r = await requestAPI<{ kernels: IFleetKernel[] }>('fleet');
        const head = h('tr', {}, ...['User', 'Kernel', 'State', 'Member', 'Flavor', 'GPU', 'Since', 'Cost'].map(t => h('th', {}, t)));
        const rows = r.kernels.map(k =>
          h(
            'tr',
            {},
            h('td', {}, k.user),
            h('td', {}, k.kernel_id.slice(0, 8)),
            h('td', {}, k.state),
            h('td', {}, `${k.member ?? '-'}${k.public ? ' (public)' : ''}`),
            h('td', {}, k.flavor ?? '-'),
            h('td', {}, k.gpu_model ? `${k.gpu_model} x${k.gpu_count}` : '-'),
            h('td', {}, k.since ? `${formatDuration((Date.now() - Date.parse(k.since)) / 1000)} ago` : '-'),
            h('td', {}, formatCost(k.cost_so_far))
          )
        );
        replaceChildren(
          out,
          r.kernels.length
            ? h('table', { className: 'mlp-kernel-Admin-table' }, head, ...rows)
            : h('p', {}, 'No GPU (auto) kernels on this server.')
        );
      } catch (error) {
        replaceChildren(out, h('p', { className: 'mlp-kernel-error' }, describe(error)));
      }
    };
    void load();
    return h(
      'div',
      {},
      h('button', { className: 'jp-mod-styled', onclick: () => void load() }, 'Refresh'),
      out
    );
  }

  private _files = new Map<string, IFileState>();
  private _history = new Map<string, IVersion[]>();
  private _specs: { name: string; display_name: string }[] = [];
  private _me: { username: string; name?: string; is_admin: boolean; why_not: string; saves?: ISaves } | null =
    null;
  private _tab = '';
  private _notice = '';
  private _noticeIsError = false;
  private _debounce = 0;
  private _editor: IFileEditor | null = null;
}

function describe(error: unknown): string {
  if (error instanceof ApiError) {
    return `${error.message} (HTTP ${error.status})`;
  }
  return error instanceof Error ? error.message : String(error);
}
