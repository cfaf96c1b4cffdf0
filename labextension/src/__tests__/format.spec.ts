import {
  eventNotification,
  formatCost,
  formatCountdown,
  formatDuration,
  formatEta,
  requestOptions,
  statusText
} from '../format';
import { IStatus } from '../types';

const NOW = Date.parse('2026-11-28T10:24:00+00:00');

function status(changes: Partial<IStatus>): IStatus {
  return { type: 'status', version: 1, state: 'cpu_only', ...changes };
}

describe('statusText', () => {
  it('says CPU only before any GPU kernel exists', () => {
    expect(statusText(status({ state: 'cpu_only' }), NOW)).toBe('CPU only');
  });

  it('shows flavor, queue position and ETA while queued', () => {
    const s = status({ state: 'queued', flavor: 'silver', queue: { position: 3, eta_s: 240 } });
    expect(statusText(s, NOW)).toBe('Queued: silver, #3, ~4 min');
  });

  it('leaves out what is unknown while queued', () => {
    expect(statusText(status({ state: 'queued', flavor: 'gold', queue: null }), NOW)).toBe('Queued: gold');
  });

  it('names the start phase in words', () => {
    expect(statusText(status({ state: 'starting', phase: 'pulling' }), NOW)).toBe('Starting: pulling image');
  });

  it('shows GPU, member, time running and cost while running', () => {
    const s = status({
      state: 'running',
      gpu_model: 'V100',
      gpu_count: 1,
      member: 'private',
      since: '2026-11-28T10:12:00+00:00',
      cost_so_far: 0
    });
    expect(statusText(s, NOW)).toBe('V100 x1 · private · 12 min · $0.00');
  });

  it('says why a GPU was released', () => {
    const idle = status({ state: 'released', last_release: { reason: 'idle', idle_s: 900 } });
    expect(statusText(idle, NOW)).toBe('Released (idle 15 min)');
    expect(statusText(status({ state: 'released', last_release: { reason: 'user' } }), NOW)).toBe(
      'Released (by you)'
    );
    expect(statusText(status({ state: 'released', last_release: null }), NOW)).toBe('Released');
  });

  it('waits for the first snapshot', () => {
    expect(statusText(null, NOW)).toBe('GPU: connecting…');
  });
});

describe('formatting', () => {
  it('formats durations for people', () => {
    expect(formatDuration(30)).toBe('30 s');
    expect(formatDuration(240)).toBe('4 min');
    expect(formatDuration(3900)).toBe('1 h 5 min');
    expect(formatDuration(7200)).toBe('2 h');
  });

  it('formats an ETA, or nothing when unknown', () => {
    expect(formatEta(240)).toBe('~4 min');
    expect(formatEta(null)).toBe('');
    expect(formatEta(undefined)).toBe('');
  });

  it('formats cost in dollars and cents', () => {
    expect(formatCost(0)).toBe('$0.00');
    expect(formatCost(4.1)).toBe('$4.10');
    expect(formatCost(undefined)).toBe('$0.00');
  });

  it('counts down to the idle deadline and stops at zero', () => {
    expect(formatCountdown('2026-11-28T10:27:00+00:00', NOW)).toBe('3:00');
    expect(formatCountdown('2026-11-28T10:00:00+00:00', NOW)).toBe('0:00');
    expect(formatCountdown(null, NOW)).toBe('');
  });
});

describe('eventNotification', () => {
  it('shows a burst as a sticky warning with the price', () => {
    const n = eventNotification(
      { type: 'event', kind: 'burst', message: 'Moved to AWS gold (A100)' },
      status({ state: 'starting', price_per_hour: 4.1 })
    );
    expect(n).toEqual({ level: 'warning', text: 'Moved to AWS gold (A100) ($4.10/h)', sticky: true });
  });

  it('does not repeat a price already in the message', () => {
    const n = eventNotification(
      { type: 'event', kind: 'burst', message: 'Moved to AWS gold at $4.10/h' },
      status({ price_per_hour: 4.1 })
    );
    expect(n.text).toBe('Moved to AWS gold at $4.10/h');
  });

  it('shows evictions and preemptions as errors', () => {
    for (const kind of ['evicted', 'preempted'] as const) {
      expect(eventNotification({ type: 'event', kind, message: 'x' }, null).level).toBe('error');
    }
  });
});

describe('requestOptions', () => {
  it('builds the %gpu options of a Change GPU choice', () => {
    expect(requestOptions({ kind: 'model', value: 'A100' })).toBe('a100');
    expect(requestOptions({ kind: 'tier', value: 'silver' })).toBe('tier=silver');
  });

  it('refuses anything that is not a plain name', () => {
    expect(() => requestOptions({ kind: 'model', value: 'a100 burst=on' })).toThrow();
  });
});
