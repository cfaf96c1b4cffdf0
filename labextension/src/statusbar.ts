/**
 * The status bar item for the active notebook: "CPU only", "Queued: silver, #3, ~4 min", "Starting: pulling
 * image", "V100 x1 · private · 12 min · $0.00", "Released (idle 15 min)". Hidden for other kernels.
 */

import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { statusText, statusTitle } from './format';
import { StatusConnection } from './statuscomm';

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
    connection.changed.connect(this._update, this);
    // Elapsed minutes advance without a new snapshot; the gateway also re-sends every 30 s.
    this._timer = window.setInterval(() => this._update(), 15000);
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
    this.node.textContent = statusText(status);
    this.node.title = `${statusTitle(status)} (click for details)`;
    this.node.dataset.state = status?.state ?? 'connecting';
    const active = this.connection.isGpuKernel;
    if (active !== this._wasActive) {
      this._wasActive = active;
      this._activeStateChanged.emit();
    }
  }

  private _timer: number;
  private _wasActive = false;
  private _activeStateChanged = new Signal<this, void>(this);
}
