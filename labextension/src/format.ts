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
    case 'move':
      return 'Released (moved to another GPU)';
    default:
      return `Released (${r.reason})`;
  }
}

/** The name to show for a member: its `display_name` from the policy (`choices.member_labels`), else its key. */
export function memberLabel(status: IStatus): string {
  const member = status.member ?? '';
  return status.choices?.member_labels?.[member] || member;
}

/** "A100 ×2" (the model and count), or "GPU ×1" when the model is unknown. */
export function gpuText(status: IStatus): string {
  return `${status.gpu_model || 'GPU'} ×${status.gpu_count || 1}`;
}

/** True while the kernel holds (or is about to hold) a GPU of a public member, which costs money. */
export function isPublic(status: IStatus | null): boolean {
  return !!status?.public && ['placing', 'queued', 'starting', 'running'].includes(status.state);
}

/**
 * The status bar text for a snapshot: one glance at the state, where and what, and, while running, the live
 * idle countdown (`now` ticks each second): "A100 ×1 · AWS · public $4.10/h · idle 0:52",
 * "Queued: silver, #3, ~4 min", "Released (idle 15 min)". Time held and cost are in the tooltip.
 */
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
      const parts = [gpuText(status), memberLabel(status)];
      if (status.public) {
        parts.push(`public ${formatPrice(status.price_per_hour)}`);
      }
      if (status.busy) {
        parts.push('busy');
      } else if (status.idle_deadline) {
        parts.push(`idle ${formatCountdown(status.idle_deadline, now)}`);
      }
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

/** Tooltip: the gateway's own sentence for the state, then where, how long, price and the notebook's spend. */
export function statusTitle(status: IStatus | null, now: number = Date.now()): string {
  if (!status) {
    return 'GPU (auto): waiting for the kernel status';
  }
  const lines = [status.message || `GPU (auto): ${status.state}`];
  const holding = ['queued', 'starting', 'running'].includes(status.state);
  if (holding && status.member) {
    lines.push(
      `Where: ${memberLabel(status)}${status.flavor ? ` / ${status.flavor}` : ''} ` +
        `(${status.public ? 'public cloud, paid' : 'private'})`
    );
  }
  if (status.state === 'running') {
    const held = elapsed(status.since, now);
    if (held) {
      lines.push(`Running for ${held}`);
    }
    lines.push(`Price: ${formatPrice(status.price_per_hour)}`);
  }
  lines.push(`This notebook's GPU cost so far: ${formatCost(status.cost_so_far)}`);
  return lines.join('\n');
}

/** How long a `brief` notification stays (a pre-start's: the panel line says it too). */
export const BRIEF_NOTIFICATION_MS = 3000;

export type NotificationLevel = 'info' | 'success' | 'warning' | 'error';

/**
 * How to show an event, or `null` for none. Only what a user must act on stays until dismissed (a paid
 * placement with its price, evictions, preemptions, failures); a private start and an idle release close by
 * themselves; a release or move the user asked for is no notification at all (the cell and the item say it).
 * A pre-start's events are `brief` (closed after `BRIEF_NOTIFICATION_MS`): the user did not ask for them and
 * the panel's pre-start line says the same; a pre-start that fails is an `error` event like any other.
 */
export function eventNotification(
  event: IStatusEvent,
  status: IStatus | null
): { level: NotificationLevel; text: string; sticky: boolean; brief?: true } | null {
  let text = event.message;
  const withPrice = (): string =>
    !/\$\d/.test(text) && status?.price_per_hour ? `${text} (${formatPrice(status.price_per_hour)})` : text;
  switch (event.kind) {
    case 'burst':
      return { level: 'warning', text: withPrice(), sticky: true };
    case 'started':
      if (status?.public) {
        text = `Paid GPU: ${text}`;
        return { level: 'warning', text: withPrice(), sticky: true };
      }
      return { level: 'success', text, sticky: false };
    case 'released': {
      const reason = status?.last_release?.reason;
      if (reason === 'user' || reason === 'move') {
        return null;
      }
      return { level: 'info', text, sticky: false };
    }
    case 'prestarted':
    case 'prestart_dropped':
      return { level: 'info', text, sticky: false, brief: true };
    case 'evicted':
    case 'preempted':
    case 'error':
      return { level: 'error', text, sticky: true };
    default:
      return { level: 'info', text, sticky: false };
  }
}

/** The kernelspecs that use mlp-kernel's provisioner, from the kernelspecs API (each spec's kernel.json metadata). */
export const PROVISIONER_NAME = 'gpu-auto-provisioner';

export function gpuKernelSpecNames(
  specs: { kernelspecs?: Record<string, { metadata?: unknown } | undefined> } | null | undefined
): string[] {
  const out: string[] = [];
  for (const [name, spec] of Object.entries(specs?.kernelspecs ?? {})) {
    const metadata = (spec?.metadata ?? {}) as { kernel_provisioner?: { provisioner_name?: unknown } };
    if (metadata.kernel_provisioner?.provisioner_name === PROVISIONER_NAME) {
      out.push(name);
    }
  }
  return out.sort();
}

/** The current request in words, for the panel: [label, value] pairs of what was asked (tier, model, ...). */
export function requestRows(request: Record<string, unknown> | null | undefined): [string, string][] {
  if (!request) {
    return [];
  }
  const r = request as {
    gpu_model?: string | null;
    gpu_count?: number;
    tier?: string | null;
    burstable?: boolean;
    budget?: string;
    deadline?: string | null;
    data_class?: string | null;
  };
  const rows: [string, string][] = [
    ['Tier', r.tier || 'any'],
    ['GPU model', `${r.gpu_model || 'any'} ×${r.gpu_count || 1}`],
    ['Burst', r.burstable ? 'on (may run on a public cloud, paid)' : 'off (private members only)'],
    ['Budget', r.budget || 'fixed'],
    ['Deadline', r.deadline || 'none'],
    ['Data class', r.data_class || 'default']
  ];
  return rows;
}

/** The Change GPU choice that matches what the kernel runs or asked for ("model:A100", "tier:silver"). */
export function currentChoice(status: IStatus): string {
  const models = status.choices?.gpu_models ?? [];
  const request = (status.request ?? {}) as { gpu_model?: string | null; tier?: string | null };
  const wanted = (status.gpu_model || request.gpu_model || '').toLowerCase();
  const model = models.find(m => m.toLowerCase() === wanted);
  if (model) {
    return `model:${model}`;
  }
  if (request.tier && (status.choices?.tiers ?? []).includes(request.tier)) {
    return `tier:${request.tier}`;
  }
  return '';
}

/** The `options` of a `request` action for a chosen GPU model or tier ("a100" / "tier=silver"). */
export function requestOptions(choice: { kind: 'model' | 'tier'; value: string }): string {
  const value = choice.value.trim();
  if (!/^[A-Za-z0-9._:-]+$/.test(value)) {
    throw new Error(`invalid ${choice.kind}: ${value}`);
  }
  return choice.kind === 'tier' ? `tier=${value}` : value.toLowerCase();
}
