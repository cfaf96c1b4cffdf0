/**
 * Pre-start on activity (issue 18; docs/design.md "Pre-start on activity"): when the user starts working on a
 * released GPU (auto) notebook (types into a cell, or runs a markdown cell), ask the gateway once to start the
 * GPU kernel now, so the code cell that follows finds it running instead of paying the cold start.
 *
 * A notebook that never had a GPU kernel (`cpu_only`) is pre-started too, but only when the user types into a
 * *code* cell (`release.prestart.first`): typing code is a strong sign a code cell will run soon, while opening,
 * reading or writing markdown is not, and must never take a GPU. So each action says what the activity was
 * (`cell`: `code`, `markdown`, or `run` for a markdown cell run).
 *
 * The gateway decides (the policy's `release.prestart` rule: never a paid or public GPU) and says in each
 * snapshot whether it would weigh a pre-start now (`prestart.ready`: released after a GPU use, a cell ran since
 * the last pre-start; `prestart.first`: the first kernel, on a code edit; `prestart.second`: the last pre-start
 * went unused, and a code edit may ask once more). This side only keeps it to one
 * action per chance: every keystroke is activity, and a `prestart` per keystroke would flood the comm. Pure (no
 * JupyterLab imports), so jest tests it as it is; index.ts feeds it the snapshots and the editor's changes.
 */

import { formatDuration } from './format';
import { IStatus, PrestartCell } from './types';

/** A sent action the gateway has not acknowledged (still `ready`) after this long may be sent again: the
 * comm may have been re-opened (kernel restart) and the action lost with it. */
export const PRESTART_RESEND_MS = 30000;

export class PrestartTrigger {
  /**
   * @param send sends `{"action": "prestart", "cell": cell}` on the status comm; false when the comm is closed
   * @param now the clock (tests pass their own)
   */
  constructor(
    private send: (cell: PrestartCell) => boolean,
    private now: () => number = Date.now
  ) {}

  /** A new snapshot of the followed kernel (null: none, or not a GPU (auto) kernel). */
  onStatus(status: IStatus | null): void {
    const ready = !!status?.prestart?.ready && status.state === 'released';
    const first = !!status?.prestart?.first && status.state === 'cpu_only';
    const second = !!status?.prestart?.second && status.state === 'released';
    if (!ready && !first && !second) {
      this._sentAt = null; // taken (or a kernel runs): the next `ready` (`first`, `second`) is a new chance
    }
    this._ready = ready;
    this._first = first;
    this._second = second;
  }

  /** The user edited a cell (`code`, `markdown`; `source`: the cell's text now) or ran a markdown cell
   * (`run`); true when this sent the action. A notebook that never had a GPU kernel is asked only for a code
   * edit whose text is code for its first kernel (`codeForFirstKernel`); the second chance after an unused
   * pre-start only for a code edit. */
  onActivity(cell: PrestartCell, source = ''): boolean {
    const code = cell === 'code';
    if (
      !this._ready &&
      !(this._second && code) &&
      !(this._first && code && codeForFirstKernel(source))
    ) {
      return false;
    }
    const t = this.now();
    if (this._sentAt !== null && t - this._sentAt < PRESTART_RESEND_MS) {
      return false;
    }
    if (!this.send(cell)) {
      return false;
    }
    this._sentAt = t;
    return true;
  }

  private _ready = false;
  private _first = false;
  private _second = false;
  private _sentAt: number | null = null;
}

/**
 * Whether a code cell's text may pre-start the notebook's first GPU kernel: it has a line of code, and it does
 * not begin with a `%gpu` line (or what may still become one, like `%g`). A cell that asks for a GPU of its
 * own (`%gpu a100 ...` at its top) starts its kernel when it runs; a first kernel placed before it with the
 * session's defaults would only be moved at once, a cold start paid twice over.
 */
export function codeForFirstKernel(source: string): boolean {
  const first = source
    .split('\n')
    .map(line => line.trim())
    .find(line => line !== '');
  return first !== undefined && !/^%gpu(\s|$)/.test(first) && !'%gpu'.startsWith(first);
}

/** The panel's pre-start line, or '' when there is nothing to say. */
export function prestartLine(status: IStatus | null): string {
  const p = status?.prestart;
  if (!p) {
    return '';
  }
  if (p.holding) {
    const hold = formatDuration(p.hold_s);
    return status?.state === 'running'
      ? `Pre-started when you started typing: given back after ${hold} if no cell runs.`
      : 'Pre-starting the GPU kernel because you started typing.';
  }
  return p.message ? `Pre-start: ${p.message}.` : '';
}
