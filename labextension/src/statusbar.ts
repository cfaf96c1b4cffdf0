/**
 * The status bar item for the active notebook, one glance: a GPU icon, then the state, where and what and
 * the live idle countdown ("A100 ×1 · AWS · public $4.10/h · idle 0:52", "Queued: silver, #3, ~4 min",
 * "Released (idle 15 min)"); the tooltip has the rest (time held, price, the notebook's cost). Hidden for
 * kernels that are not GPU (auto) kernels.
 *
 * It redraws on every snapshot the status comm brings (events as they happen) and once a second for the
 * countdown, which runs from the snapshot's `idle_deadline` on the browser's clock.
 */

import { LabIcon } from '@jupyterlab/ui-components';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { isPublic, statusText, statusTitle } from './format';
import { StatusConnection } from './statuscomm';

/** A GPU card (board with a fan), in the theme's icon colour. */
export const gpuIcon = new LabIcon({
  name: 'mlp-kernel:gpu',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<path d="M2 6h18a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H6v2H4V8H2zm4 2v8h14V8zm7 1.5a2.5 2.5 0 1 1 0 5 2.5 2.5 0 0 1 0-5z"/>' +
    '</g></svg>'
});

export class GpuStatusItem extends Widget {
  constructor(
    private connection: StatusConnection,
    onClick: () => void
  ) {
    super();
    this.addClass('mlp-kernel-StatusItem');
    this.node.setAttribute('role', 'button');
    this.node.setAttribute('data-mlp-kernel', 'status-item');
    this.node.addEventListener('click', onClick);
    const icon = document.createElement('span');
    icon.className = 'mlp-kernel-StatusItem-icon';
    gpuIcon.element({ container: icon, elementPosition: 'center', height: '16px', width: '16px' });
    this._text.className = 'jp-StatusBar-TextItem mlp-kernel-StatusItem-text';
    this._text.setAttribute('data-mlp-kernel', 'status-text');
    this.node.append(icon, this._text);
    connection.changed.connect(this._update, this);
    this._timer = window.setInterval(() => this._update(), 1000);
    this._update();
  }

  /** Emitted when the item should appear or hide (active kernel became / stopped being GPU (auto)). */
  get activeStateChanged(): ISignal<this, void> {
    return this._activeStateChanged;
  }

  get isActiveItem(): boolean {
    return this.connection.isGpuKernel;
  }

  dispose(): void {
    window.clearInterval(this._timer);
    this.connection.changed.disconnect(this._update, this);
    super.dispose();
  }

  private _update(): void {
    const status = this.connection.status;
    const now = Date.now();
    const text = statusText(status, now);
    if (this._text.textContent !== text) {
      this._text.textContent = text;
    }
    this.node.title = `${statusTitle(status, now)}\n(click for the GPU panel)`;
    this.node.dataset.state = status?.state ?? 'connecting';
    this.node.dataset.public = String(isPublic(status));
    const active = this.connection.isGpuKernel;
    if (active !== this._wasActive) {
      this._wasActive = active;
      this._activeStateChanged.emit();
    }
  }

  private _text = document.createElement('span');
  private _timer: number;
  private _wasActive = false;
  private _activeStateChanged = new Signal<this, void>(this);
}
