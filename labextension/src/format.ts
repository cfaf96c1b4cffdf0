/**
 * Pure formatting of status snapshots: what the status bar and the GPU panel say.
 * No JupyterLab imports, so jest tests it directly (src/__tests__/format.spec.ts).
 */

import { IStatus, IStatusEvent } from './types';

/** "25 s", "4 min", "1 h 5 min", "2 h" for a number of seconds (same spellings as the kernel's messages). */
export function formatDuration(seconds: number): string {
  if (!isFinite(seconds) || seconds < 0) {
    return '-';
  }
  if (seconds < 60) {
    return `${Math.round(seconds)} s`;
  }
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min`;
  }
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return m ? `${h} h ${m} min` : `${h} h`;
}

/** "~4 min" for an ETA in seconds; "" when unknown. */
export function formatEta(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '';
  }
  return `~${formatDuration(Math.max(seconds, 0))}`;
}

/** "$0.00", "$4.10", "$12.35". */
export function formatCost(dollars: number | null | undefined): string {
  const value = typeof dollars === 'number' && isFinite(dollars) ? dollars : 0;
  return `$${value.toFixed(2)}`;
}

/** "$4.10/h", or "free" for a zero price. */
export function formatPrice(perHour: number | null | undefined): string {
  return perHour ? `${formatCost(perHour)}/h` : 'free';
}

/** "mm:ss" (or "h:mm:ss") until a deadline; "0:00" once passed. */
export function formatCountdown(deadline: string | null | undefined, now: number): string {
  if (!deadline) {
    return '';
  }
  const left = Math.max(0, Math.round((Date.parse(deadline) - now) / 1000));
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const s = String(left % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

const PHASE_TEXT: Record<string, string> = {
  queued: 'queued',
  admitted: 'admitted',
  scheduled: 'scheduled on a node',
  pulling: 'pulling image',
  starting: 'starting kernel',
  connected: 'connecting'
};

export function phaseText(phase: string | null | undefined): string {
  return phase ? PHASE_TEXT[phase] || phase : 'starting';
}

function elapsed(since: string | null | undefined, now: number): string {
  if (!since) {
    return '';
  }
  const t = Date.parse(since);
  return isNaN(t) ? '' : formatDuration(Math.max(0, (now - t) / 1000));
}

function releaseText(status: IStatus): string {
  const r = status.last_release;
  if (!r || !r.reason) {
    return 'Released';
  }
  switch (r.reason) {
    case 'idle':
      return r.idle_s ? `Released (idle ${formatDuration(r.idle_s)})` : 'Released (idle)';
    case 'user':
      return 'Released (by you)';
    default:
      return `Released (${r.reason})`;
  }
}

/** The status bar text for a snapshot, e.g. "Queued: silver, #3, ~4 min" or "V100 x1 · private · 12 min · $0.00". */
export function statusText(status: IStatus | null, now: number = Date.now()): string {
  if (!status) {
    return 'GPU: connecting…';
  }
  switch (status.state) {
    case 'cpu_only':
      return 'CPU only';
    case 'placing':
      return 'Placing GPU…';
    case 'queued': {
      const q = status.queue || {};
      const parts = [status.flavor || q.local_queue || ''];
      if (q.position) {
        parts.push(`#${q.position}`);
      }
      const eta = formatEta(q.eta_s);
      if (eta) {
        parts.push(eta);
      }
      return `Queued: ${parts.filter(Boolean).join(', ')}`.replace(/: $/, '');
    }
    case 'starting':
      return `Starting: ${phaseText(status.phase)}`;
    case 'running': {
      const gpu = status.gpu_model ? `${status.gpu_model} x${status.gpu_count || 1}` : 'GPU';
      const parts = [gpu, status.member || '', elapsed(status.since, now), formatCost(status.cost_so_far)];
      return parts.filter(Boolean).join(' · ');
    }
    case 'releasing':
      return 'Releasing GPU…';
    case 'released':
      return releaseText(status);
    case 'error':
      return 'GPU error';
    default:
      return String(status.state);
  }
}

/** Tooltip: the gateway's own sentence for the state. */
export function statusTitle(status: IStatus | null): string {
  return status?.message || 'GPU (auto): waiting for the kernel status';
}

export type NotificationLevel = 'info' | 'success' | 'warning' | 'error';

/** How loudly to show an event, and the text (burst events always show the price). */
export function eventNotification(
  event: IStatusEvent,
  status: IStatus | null
): { level: NotificationLevel; text: string; sticky: boolean } {
  let text = event.message;
  switch (event.kind) {
    case 'burst':
      if (!/\$\d/.test(text) && status?.price_per_hour) {
        text += ` (${formatPrice(status.price_per_hour)})`;
      }
      return { level: 'warning', text, sticky: true };
    case 'released':
      return { level: 'info', text, sticky: true };
    case 'evicted':
    case 'preempted':
    case 'error':
      return { level: 'error', text, sticky: true };
    default:
      return { level: 'success', text, sticky: false };
  }
}

/** The `options` of a `request` action for a chosen GPU model or tier ("a100" / "tier=silver"). */
export function requestOptions(choice: { kind: 'model' | 'tier'; value: string }): string {
  const value = choice.value.trim();
  if (!/^[A-Za-z0-9._:-]+$/.test(value)) {
    throw new Error(`invalid ${choice.kind}: ${value}`);
  }
  return choice.kind === 'tier' ? `tier=${value}` : value.toLowerCase();
}
