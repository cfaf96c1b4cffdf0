/**
 * The GPU panel (right sidebar, opened by clicking the status bar item): where the kernel runs and why,
 * queue position and ETA, price and cost so far, idle countdown, and the actions Release GPU, Change GPU
 * and Allow burst, all sent to the gateway over the status comm (docs/status-comm.md).
 */

import { Widget } from '@lumino/widgets';

import { h, replaceChildren } from './dom';
import {
  formatCost,
  formatCountdown,
  formatDuration,
  formatEta,
  formatPrice,
  phaseText,
  requestOptions,
  statusText
} from './format';
import { StatusConnection } from './statuscomm';
import { IStatus } from './types';

export class GpuPanel extends Widget {
  constructor(private connection: StatusConnection) {
    super();
    this.id = 'mlp-kernel-gpu-panel';
    this.addClass('mlp-kernel-Panel');
    this.title.caption = 'GPU (auto)';
    this.title.label = 'GPU';
    connection.changed.connect(this._render, this);
    connection.actionError.connect((_, message) => this._showError(message), this);
    this._timer = window.setInterval(() => this._tick(), 1000);
    this._render();
  }

  dispose(): void {
    window.clearInterval(this._timer);
    this.connection.changed.disconnect(this._render, this);
    super.dispose();
  }

  private _tick(): void {
    const el = this.node.querySelector('[data-mlp-kernel="idle-countdown"]');
    const status = this.connection.status;
    if (el && status?.idle_deadline) {
      el.textContent = formatCountdown(status.idle_deadline, Date.now());
    }
  }

  private _showError(message: string): void {
    this._error = message;
    this._render();
  }

  private _send(action: Parameters<StatusConnection['send']>[0]): void {
    this._error = '';
    if (!this.connection.send(action)) {
      this._error = 'The kernel status connection is closed; restart the kernel or reopen the notebook.';
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
    if (!status) {
      replaceChildren(this.node, h('h2', {}, 'GPU (auto)'), h('p', {}, 'Waiting for the kernel status…'));
      return;
    }
    replaceChildren(
      this.node,
      h('h2', {}, 'GPU (auto)'),
      h('p', { className: 'mlp-kernel-Panel-state', 'data-mlp-kernel': 'panel-state' }, statusText(status)),
      h('p', { className: 'mlp-kernel-Panel-message' }, status.message || ''),
      this._where(status),
      this._queue(status),
      this._cost(status),
      this._idle(status),
      this._explanation(status),
      this._actions(status),
      this._error ? h('p', { className: 'mlp-kernel-error', 'data-mlp-kernel': 'panel-error' }, this._error) : null
    );
  }

  private _row(label: string, value: string): HTMLElement {
    return h('tr', {}, h('th', {}, label), h('td', {}, value));
  }

  private _where(s: IStatus): HTMLElement | null {
    if (!s.member && !s.flavor) {
      return null;
    }
    return h(
      'table',
      { className: 'mlp-kernel-Panel-table' },
      this._row('Member', `${s.member ?? '-'} (${s.public ? 'public' : 'private'})`),
      this._row('Flavor', s.flavor ?? '-'),
      this._row('GPU', s.gpu_model ? `${s.gpu_model} x${s.gpu_count ?? 1}` : '-'),
      s.state === 'starting' ? this._row('Phase', phaseText(s.phase)) : null,
      s.since && s.state === 'running'
        ? this._row('Running for', formatDuration((Date.now() - Date.parse(s.since)) / 1000))
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
    return h(
      'table',
      { className: 'mlp-kernel-Panel-table' },
      this._row('Price', formatPrice(s.price_per_hour)),
      this._row('Cost so far', formatCost(s.cost_so_far))
    );
  }

  private _idle(s: IStatus): HTMLElement | null {
    if (s.state !== 'running') {
      return s.idle_timeout_s
        ? h(
            'p',
            {},
            s.idle_rule
              ? `Idle release: ${s.idle_rule} (the more GPUs, the sooner).`
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
    if (!d) {
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
    const change = (): void => {
      const [kind, value] = select.value.split(/:(.*)/s);
      try {
        this._send({ action: 'request', options: requestOptions({ kind: kind as 'model' | 'tier', value }) });
      } catch (error) {
        this._showError(String(error));
      }
    };
    const holding = ['queued', 'starting', 'running', 'placing'].includes(s.state);
    return h(
      'div',
      { className: 'mlp-kernel-Panel-actions' },
      h(
        'button',
        {
          className: 'jp-mod-styled jp-mod-warn',
          'data-mlp-kernel': 'release',
          disabled: !holding,
          onclick: () => this._send({ action: 'release' })
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
      choices.burst_allowed
        ? h(
            'button',
            {
              className: 'jp-mod-styled',
              'data-mlp-kernel': 'allow-burst',
              onclick: () => this._send({ action: 'request', options: 'burst=on budget=flex' })
            },
            'Allow burst'
          )
        : null
    );
  }

  private _error = '';
  private _timer: number;
}
