/**
 * One live connection to the `mlp_kernel.status` comm of the active notebook's kernel.
 *
 * Status travels over the Jupyter protocol (not the REST API) so it also works when JupyterLab talks to
 * kernels through a gateway server. The comm is opened when the kernel is a GPU (auto) kernel (by kernel
 * spec name: those whose kernel.json uses our provisioner, see index.ts) or, if probing is enabled, for any kernel, in which case the item stays hidden unless a
 * snapshot arrives. Kernel restarts and kernel changes drop comms, so the comm is re-opened then.
 */

import { ISessionContext } from '@jupyterlab/apputils';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { COMM_TARGET, IStatus, IStatusEvent, StatusAction, StatusMessage } from './types';

export interface IStatusOptions {
  kernelSpecNames: string[];
  probeAllKernels: boolean;
}

export class StatusConnection {
  constructor(private options: IStatusOptions) {}

  /** The latest snapshot, or null before the first one. */
  get status(): IStatus | null {
    return this._status;
  }

  /** True when the active kernel is a GPU (auto) kernel (by name, or because it answered the comm). */
  get isGpuKernel(): boolean {
    return this._isGpuKernel;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get event(): ISignal<this, IStatusEvent> {
    return this._event;
  }

  /** `{type: "error"}` answers to an action (e.g. an invalid Change GPU request). */
  get actionError(): ISignal<this, string> {
    return this._actionError;
  }

  /** The followed kernel's name as the launcher shows it ("GPU (demo)"), or "GPU (auto)" when none. */
  get kernelDisplayName(): string {
    const name = this._session?.kernelDisplayName;
    return this._isGpuKernel && name ? name : 'GPU (auto)';
  }

  /** New options; the comm is re-opened only when they change what is followed. */
  setOptions(options: IStatusOptions): void {
    if (JSON.stringify(options) === JSON.stringify(this.options)) {
      return;
    }
    this.options = options;
    this._reopen();
  }

  /** Follow a notebook's session (or none). */
  setSession(session: ISessionContext | null): void {
    if (session === this._session) {
      return;
    }
    if (this._session) {
      this._session.kernelChanged.disconnect(this._reopen, this);
      this._session.statusChanged.disconnect(this._onKernelStatus, this);
      this._session.connectionStatusChanged.disconnect(this._onConnection, this);
    }
    this._session = session;
    if (session) {
      session.kernelChanged.connect(this._reopen, this);
      session.statusChanged.connect(this._onKernelStatus, this);
      session.connectionStatusChanged.connect(this._onConnection, this);
    }
    this._reopen();
  }

  send(action: StatusAction): boolean {
    if (!this._comm || this._comm.isDisposed) {
      return false;
    }
    this._comm.send(action as any);
    return true;
  }

  dispose(): void {
    this.setSession(null);
  }

  private _onKernelStatus(_: ISessionContext, status: Kernel.Status): void {
    if (status === 'restarting' || status === 'autorestarting') {
      this._restarting = true;
    } else if (this._restarting && (status === 'idle' || status === 'busy')) {
      this._restarting = false;
      this._reopen();
    }
  }

  private _onConnection(_: ISessionContext, status: Kernel.ConnectionStatus): void {
    if (status === 'connected' && (!this._comm || this._comm.isDisposed)) {
      this._reopen();
    }
  }

  private _closeComm(): void {
    const comm = this._comm;
    this._comm = null;
    if (comm && !comm.isDisposed) {
      try {
        comm.close();
      } catch {
        comm.dispose();
      }
    }
  }

  private _reopen(): void {
    this._closeComm();
    this._status = null;
    const kernel = this._session?.session?.kernel ?? null;
    const byName = !!kernel && this.options.kernelSpecNames.includes(kernel.name);
    this._isGpuKernel = byName;
    this._changed.emit();
    if (!kernel || (!byName && !this.options.probeAllKernels)) {
      return;
    }
    const comm = kernel.createComm(COMM_TARGET);
    this._comm = comm;
    comm.onMsg = (msg: KernelMessage.ICommMsgMsg) => this._onMessage(comm, msg.content.data as any);
    comm.onClose = () => {
      if (this._comm === comm) {
        this._comm = null;
      }
    };
    try {
      comm.open({});
    } catch (error) {
      console.warn('mlp-kernel: cannot open the status comm', error);
    }
  }

  private _onMessage(comm: Kernel.IComm, data: StatusMessage): void {
    if (comm !== this._comm || !data || typeof data !== 'object') {
      return;
    }
    switch (data.type) {
      case 'status':
        this._status = data;
        this._isGpuKernel = true;
        this._changed.emit();
        break;
      case 'event':
        this._event.emit(data);
        break;
      case 'error':
        this._actionError.emit(data.message);
        break;
    }
  }

  private _session: ISessionContext | null = null;
  private _comm: Kernel.IComm | null = null;
  private _status: IStatus | null = null;
  private _isGpuKernel = false;
  private _restarting = false;
  private _changed = new Signal<this, void>(this);
  private _event = new Signal<this, IStatusEvent>(this);
  private _actionError = new Signal<this, string>(this);
}
