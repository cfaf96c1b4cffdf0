/**
 * The GPU panel (right sidebar, opened by clicking the status bar item): where the kernel runs and why,
 * queue position and ETA, price and cost so far, idle countdown, what the kernel sees of the notebook's files,
 * and the actions Release GPU, Change GPU and Allow burst, all sent to the gateway over the status comm
 * (docs/status-comm.md).
 */

import { Widget } from '@lumino/widgets';

import { h, replaceChildren } from './dom';
import { filesView } from './files';
import {
  currentChoice,
  formatCost,
  formatCountdown,
  formatDuration,
  formatEta,
  formatPrice,
  gpuText,
  memberLabel,
  phaseText,
  requestOptions,
  requestRows,
  statusText
} from './format';
import { prestartLine } from './prestart';
import { StatusConnection } from './statuscomm';
import { IStatus } from './types';

/** States in which the kernel holds, or is about to hold, a GPU: where, why and price apply only then. */
const HOLDING = ['placing', 'queued', 'starting', 'running'];

export class GpuPanel extends Widget {
  constructor(private connection: StatusConnection) {
    super();
    this.id = 'mlp-kernel-gpu-panel';
    this.addClass('mlp-kernel-Panel');
    this.title.caption = 'GPU (auto)';
    this.title.label = 'GPU';
    connection.changed.connect(this._onChanged, this);
    connection.actionError.connect((_, message) => this._showError(message), this);
    this._timer = window.setInterval(() => this._tick(), 1000);
    this._render();
  }

  dispose(): void {
    window.clearInterval(this._timer);
    this.connection.changed.disconnect(this._onChanged, this);
    super.dispose();
  }

  /** Each second: the countdown, the time held and the state line move on without a new snapshot. */
  private _tick(): void {
    const status = this.connection.status;
    if (!status) {
      return;
    }
    const now = Date.now();
    const set = (name: string, text: string): void => {
      const el = this.node.querySelector(`[data-mlp-kernel="${name}"]`);
      if (el && el.textContent !== text) {
        el.textContent = text;
      }
    };
    if (status.idle_deadline) {
      set('idle-countdown', formatCountdown(status.idle_deadline, now));
    }
    if (status.since) {
      set('running-for', formatDuration((now - Date.parse(status.since)) / 1000));
    }
    set('panel-state', statusText(status, now));
  }

  /** A new snapshot: a confirmation stays until the state it announced has come (or another kernel). */
  private _onChanged(): void {
    const state = this.connection.status?.state ?? '';
    if (this._notice && state !== this._noticeState) {
      this._noticeState = state;
      this._noticeTicks += 1;
      if (this._noticeTicks > 2) {
        this._notice = '';
      }
    }
    this._render();
  }

  private _showError(message: string): void {
    this._error = message;
    this._notice = '';
    this._render();
  }

  /** Sends an action and says what it did ("Asked for ..."), or why it could not. */
  private _send(action: Parameters<StatusConnection['send']>[0], notice: string): void {
    this._error = '';
    this._notice = '';
    if (!this.connection.send(action)) {
      this._error = 'The kernel status connection is closed; restart the kernel or reopen the notebook.';
    } else {
      this._notice = notice;
      this._noticeState = this.connection.status?.state ?? '';
      this._noticeTicks = 0;
    }
    this._render();
  }

  private _render(): void {
    const status = this.connection.status;
    if (!this.connection.isGpuKernel) {
      replaceChildren(
        this.node,
        h('h2', {}, 'GPU (auto)'),
        h('p', {}, 'The active notebook does not use the GPU (auto) kernel.')
      );
      return;
    }
    const heading = h('h2', {}, this.connection.kernelDisplayName);
    if (!status) {
      replaceChildren(this.node, heading, h('p', {}, 'Waiting for the kernel status…'));
      return;
    }
    replaceChildren(
      this.node,
      heading,
      h('p', { className: 'mlp-kernel-Panel-state', 'data-mlp-kernel': 'panel-state' }, statusText(status)),
      h('p', { className: 'mlp-kernel-Panel-message' }, status.message || ''),
      this._where(status),
      this._queue(status),
      this._cost(status),
      this._idle(status),
      this._prestart(status),
      this._files(status),
      this._request(status),
      this._explanation(status),
      this._actions(status),
      this._notice ? h('p', { className: 'mlp-kernel-ok', 'data-mlp-kernel': 'panel-notice' }, this._notice) : null,
      this._error ? h('p', { className: 'mlp-kernel-error', 'data-mlp-kernel': 'panel-error' }, this._error) : null
    );
  }

  private _row(label: string, value: string): HTMLElement {
    return h('tr', {}, h('th', {}, label), h('td', {}, value));
  }

  /** Where the kernel is, only while it holds (or waits for) a GPU: after a release it is history. */
  private _where(s: IStatus): HTMLElement | null {
    if (!HOLDING.includes(s.state) || (!s.member && !s.flavor)) {
      return null;
    }
    return h(
      'table',
      { className: 'mlp-kernel-Panel-table', 'data-mlp-kernel': 'panel-where' },
      this._row('Where', s.member ? memberLabel(s) : '-'),
      this._row('Kind', s.public ? `public cloud: you pay ${formatPrice(s.price_per_hour)}` : 'private (no charge)'),
      this._row('Flavor', s.flavor ?? '-'),
      this._row('GPU', s.gpu_model ? gpuText(s) : '-'),
      s.state === 'starting' ? this._row('Phase', phaseText(s.phase)) : null,
      s.since && s.state === 'running'
        ? h(
            'tr',
            {},
            h('th', {}, 'Running for'),
            h('td', { 'data-mlp-kernel': 'running-for' }, formatDuration((Date.now() - Date.parse(s.since)) / 1000))
          )
        : null
    );
  }

  private _queue(s: IStatus): HTMLElement | null {
    const q = s.queue;
    if (!q) {
      return null;
    }
    return h(
      'table',
      { className: 'mlp-kernel-Panel-table' },
      this._row('Queue', q.local_queue ?? '-'),
      this._row('Position', q.position ? `#${q.position}` : '-'),
      this._row('ETA', formatEta(q.eta_s) || 'unknown'),
      q.reason ? this._row('Reason', q.reason) : null
    );
  }

  private _cost(s: IStatus): HTMLElement {
    const running = s.state === 'running';
    return h(
      'table',
      { className: 'mlp-kernel-Panel-table', 'data-mlp-kernel': 'panel-cost' },
      running ? this._row('Price', formatPrice(s.price_per_hour)) : null,
      this._row('Notebook total', formatCost(s.cost_so_far)),
      // this month's public GPU budgets, as %gpu words them ("Team ml-vision: $412 of $500 this month ...")
      ...(s.budget ?? []).map(b => this._row(b.scope === 'team' ? 'Team budget' : 'Your budget', b.line))
    );
  }

  /** What pre-start on activity did: started on the user's typing, or dropped unused (prestart.ts). */
  private _prestart(s: IStatus): HTMLElement | null {
    const line = prestartLine(s);
    return line ? h('p', { className: 'mlp-kernel-Panel-prestart', 'data-mlp-kernel': 'panel-prestart' }, line) : null;
  }

  /** What the running (or last) GPU kernel sees of the notebook's files, and what a copy left out. */
  private _files(s: IStatus): HTMLElement | null {
    if (!s.files) {
      return null;
    }
    const view = filesView(s.files, s.state === 'running');
    const leftOut = view.leftOut.length
      ? h(
          'details',
          { 'data-mlp-kernel': 'panel-files-left-out' },
          h('summary', {}, `Left out (${view.leftOut.length + view.more})`),
          h(
            'ul',
            {},
            ...view.leftOut.map(([path, reason]) => h('li', {}, h('code', {}, path), `: ${reason}`)),
            view.more ? h('li', {}, `and ${view.more} more`) : null
          )
        )
      : null;
    return h(
      'details',
      { className: 'mlp-kernel-Panel-files', 'data-mlp-kernel': 'panel-files', open: true },
      h('summary', {}, view.title),
      h('table', { className: 'mlp-kernel-Panel-table' }, ...view.rows.map(([k, v]) => this._row(k, v))),
      h('p', { 'data-mlp-kernel': 'panel-files-sentence' }, view.sentence),
      leftOut
    );
  }

  /** What the notebook asks for (`%gpu` options and the policy's defaults). */
  private _request(s: IStatus): HTMLElement | null {
    const rows = requestRows(s.request);
    if (!rows.length) {
      return null;
    }
    return h(
      'details',
      { className: 'mlp-kernel-Panel-request', 'data-mlp-kernel': 'panel-request' },
      h('summary', {}, 'Requested'),
      h('table', { className: 'mlp-kernel-Panel-table' }, ...rows.map(([k, v]) => this._row(k, v)))
    );
  }

  private _idle(s: IStatus): HTMLElement | null {
    if (s.state !== 'running') {
      return s.idle_timeout_s
        ? h(
            'p',
            {},
            s.idle_rule
              ? `Idle release: ${s.idle_rule}.`
              : `Idle release after ${formatDuration(s.idle_timeout_s)} without activity.`
          )
        : null;
    }
    if (s.busy) {
      return h('p', {}, 'Busy: a running cell keeps the GPU.');
    }
    if (!s.idle_deadline) {
      return h('p', {}, 'Never released automatically (idle timeout off).');
    }
    return h(
      'p',
      {},
      'Released when idle in ',
      h(
        'strong',
        { 'data-mlp-kernel': 'idle-countdown' },
        formatCountdown(s.idle_deadline, Date.now())
      )
    );
  }

  private _explanation(s: IStatus): HTMLElement | null {
    const d = s.decision;
    if (!d || !HOLDING.includes(s.state)) {
      return null;
    }
    const rules = (d.explanation ?? []).map(r =>
      h('li', {}, h('code', {}, r.rule), `: ${r.result}`, r.detail ? ` (${r.detail})` : '')
    );
    return h(
      'details',
      { className: 'mlp-kernel-Panel-why', open: true },
      h('summary', {}, 'Why here'),
      h('p', {}, d.summary || d.action),
      h('ol', {}, ...rules)
    );
  }

  private _actions(s: IStatus): HTMLElement {
    const choices = s.choices ?? {};
    const select = h('select', { 'data-mlp-kernel': 'change-gpu-choice' });
    for (const model of choices.gpu_models ?? []) {
      select.appendChild(h('option', { value: `model:${model}` }, model));
    }
    for (const tier of choices.tiers ?? []) {
      select.appendChild(h('option', { value: `tier:${tier}` }, `tier ${tier}`));
    }
    select.value = currentChoice(s) || select.value;
    const change = (): void => {
      const [kind, value] = select.value.split(/:(.*)/s);
      try {
        const options = requestOptions({ kind: kind as 'model' | 'tier', value });
        const what = kind === 'tier' ? `tier ${value}` : value;
        this._send(
          { action: 'request', options },
          s.state === 'running' || s.state === 'queued' || s.state === 'starting'
            ? `Asked for ${what} (%gpu ${options}): the kernel moves to it; the state above follows.`
            : `Asked for ${what} (%gpu ${options}): the next cell that runs code starts it.`
        );
      } catch (error) {
        this._showError(String(error));
      }
    };
    const holding = HOLDING.includes(s.state);
    const burstOn = !!(s.request as { burstable?: boolean } | null | undefined)?.burstable;
    return h(
      'div',
      { className: 'mlp-kernel-Panel-actions' },
      h(
        'button',
        {
          className: 'jp-mod-styled jp-mod-warn',
          'data-mlp-kernel': 'release',
          disabled: !holding,
          onclick: () =>
            this._send(
              { action: 'release' },
              'Asked to release the GPU: the next cell that runs code starts a new GPU kernel.'
            )
        },
        'Release GPU'
      ),
      select.options.length
        ? h(
            'div',
            { className: 'mlp-kernel-Panel-change' },
            select,
            h(
              'button',
              { className: 'jp-mod-styled', 'data-mlp-kernel': 'change-gpu', onclick: change },
              'Change GPU'
            )
          )
        : null,
      choices.burst_allowed && !burstOn
        ? h(
            'button',
            {
              className: 'jp-mod-styled',
              'data-mlp-kernel': 'allow-burst',
              onclick: () =>
                this._send(
                  { action: 'request', options: 'burst=on budget=flex' },
                  'Burst allowed (%gpu burst=on budget=flex): when the private GPUs are busy, a public cloud GPU may be used, at its price.'
                )
            },
            'Allow burst'
          )
        : null
    );
  }

  private _error = '';
  private _notice = '';
  private _noticeState = '';
  private _noticeTicks = 0;
  private _timer: number;
}
