import {
  currentChoice,
  eventNotification,
  formatCost,
  formatCountdown,
  formatDuration,
  formatEta,
  gpuKernelSpecNames,
  isPublic,
  requestOptions,
  requestRows,
  statusText,
  statusTitle
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

  it('shows GPU, the member by its display name and the live idle countdown while running', () => {
    const s = status({
      state: 'running',
      gpu_model: 'A100',
      gpu_count: 1,
      member: 'private',
      since: '2026-11-28T10:12:00+00:00',
      idle_deadline: '2026-11-28T10:24:52+00:00',
      cost_so_far: 0,
      choices: { member_labels: { private: 'private cluster' } }
    });
    expect(statusText(s, NOW)).toBe('A100 ×1 · private cluster · idle 0:52');
    // the countdown ticks with the clock, no new snapshot needed
    expect(statusText(s, NOW + 2000)).toBe('A100 ×1 · private cluster · idle 0:50');
    expect(statusText({ ...s, busy: true, idle_deadline: null }, NOW)).toBe('A100 ×1 · private cluster · busy');
  });

  it('says public and the price while on a public member', () => {
    const s = status({
      state: 'running',
      gpu_model: 'A100',
      gpu_count: 1,
      member: 'aws',
      public: true,
      price_per_hour: 4.1,
      choices: { member_labels: { aws: 'AWS' } }
    });
    expect(statusText(s, NOW)).toBe('A100 ×1 · AWS · public $4.10/h');
    expect(isPublic(s)).toBe(true);
    expect(isPublic({ ...s, state: 'released' })).toBe(false);
    expect(isPublic({ ...s, public: false })).toBe(false);
  });

  it('names the member by its key when the policy gives no display name', () => {
    const s = status({ state: 'running', gpu_model: 'local', gpu_count: 2, member: 'local' });
    expect(statusText(s, NOW)).toBe('local ×2 · local');
  });

  it('says why a GPU was released', () => {
    const idle = status({ state: 'released', last_release: { reason: 'idle', idle_s: 900 } });
    expect(statusText(idle, NOW)).toBe('Released (idle 15 min)');
    expect(statusText(status({ state: 'released', last_release: { reason: 'user' } }), NOW)).toBe(
      'Released (by you)'
    );
    expect(statusText(status({ state: 'released', last_release: null }), NOW)).toBe('Released');
    expect(statusText(status({ state: 'released', last_release: { reason: 'move' } }), NOW)).toBe(
      'Released (moved to another GPU)'
    );
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

describe('statusTitle', () => {
  it('has the rest: message, where, time held, price and the notebook total', () => {
    const s = status({
      state: 'running',
      message: 'Running on AWS',
      member: 'aws',
      flavor: 'gold',
      public: true,
      since: '2026-11-28T10:12:00+00:00',
      price_per_hour: 4.1,
      cost_so_far: 0.82,
      choices: { member_labels: { aws: 'AWS' } }
    });
    expect(statusTitle(s, NOW).split('\n')).toEqual([
      'Running on AWS',
      'Where: AWS / gold (public cloud, paid)',
      'Running for 12 min',
      'Price: $4.10/h',
      "This notebook's GPU cost so far: $0.82"
    ]);
  });

  it('keeps the notebook total after a release, without where', () => {
    const s = status({ state: 'released', message: 'GPU released', member: 'aws', cost_so_far: 1.5 });
    expect(statusTitle(s, NOW).split('\n')).toEqual(['GPU released', "This notebook's GPU cost so far: $1.50"]);
  });
});

describe('eventNotification', () => {
  it('announces a start on a public member as a sticky warning with the price', () => {
    const n = eventNotification(
      { type: 'event', kind: 'started', message: 'Running on AWS gold' },
      status({ state: 'running', public: true, price_per_hour: 4.1 })
    );
    expect(n).toEqual({ level: 'warning', text: 'Paid GPU: Running on AWS gold ($4.10/h)', sticky: true });
  });

  it('lets a private start close by itself', () => {
    const n = eventNotification({ type: 'event', kind: 'started', message: 'Running on private' }, status({}));
    expect(n).toEqual({ level: 'success', text: 'Running on private', sticky: false });
  });

  it('does not notify a release or move the user asked for; an idle release closes by itself', () => {
    const released = (reason: 'user' | 'move' | 'idle' | 'oomkilled') =>
      eventNotification(
        { type: 'event', kind: 'released', message: 'GPU released' },
        status({ state: 'released', last_release: { reason } })
      );
    expect(released('user')).toBeNull();
    expect(released('move')).toBeNull();
    expect(released('idle')).toEqual({ level: 'info', text: 'GPU released', sticky: false });
  });

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
    expect(n?.text).toBe('Moved to AWS gold at $4.10/h');
  });

  it('shows evictions and preemptions as errors', () => {
    for (const kind of ['evicted', 'preempted'] as const) {
      expect(eventNotification({ type: 'event', kind, message: 'x' }, null)).toEqual({
        level: 'error',
        text: 'x',
        sticky: true
      });
    }
  });

  it('keeps a pre-start brief: the user did not ask for it and the panel says it', () => {
    for (const kind of ['prestarted', 'prestart_dropped'] as const) {
      expect(eventNotification({ type: 'event', kind, message: 'x' }, status({}))).toEqual({
        level: 'info',
        text: 'x',
        sticky: false,
        brief: true
      });
    }
    const started = eventNotification({ type: 'event', kind: 'started', message: 'x' }, status({}));
    expect(started?.brief).toBeUndefined();
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

describe('gpuKernelSpecNames', () => {
  it('finds every kernelspec whose kernel.json uses our provisioner, and no other', () => {
    const provisioner = (name: string) => ({ metadata: { kernel_provisioner: { provisioner_name: name } } });
    const specs = {
      default: 'python3',
      kernelspecs: {
        'gpu-demo': provisioner('gpu-auto-provisioner'),
        'gpu-auto': provisioner('gpu-auto-provisioner'),
        other: provisioner('local-provisioner'),
        python3: { metadata: {} },
        bare: {}
      }
    };
    expect(gpuKernelSpecNames(specs)).toEqual(['gpu-auto', 'gpu-demo']);
    expect(gpuKernelSpecNames(null)).toEqual([]);
  });
});

describe('the panel request and choice', () => {
  it('shows the current request in words', () => {
    const rows = requestRows({
      gpu_model: null,
      gpu_count: 1,
      tier: 'silver',
      burstable: true,
      budget: 'flex',
      deadline: '2026-12-01T18:00:00+00:00',
      data_class: 'internal'
    });
    expect(rows).toEqual([
      ['Tier', 'silver'],
      ['GPU model', 'any ×1'],
      ['Burst', 'on (may run on a public cloud, paid)'],
      ['Budget', 'flex'],
      ['Deadline', '2026-12-01T18:00:00+00:00'],
      ['Data class', 'internal']
    ]);
    expect(requestRows(null)).toEqual([]);
  });

  it('starts the Change GPU choice at the current GPU, else the requested tier', () => {
    const choices = { gpu_models: ['RTX', 'A100', 'V100'], tiers: ['bronze', 'silver'] };
    expect(currentChoice(status({ state: 'running', gpu_model: 'A100', choices }))).toBe('model:A100');
    expect(currentChoice(status({ request: { gpu_model: 'v100' }, choices }))).toBe('model:V100');
    expect(currentChoice(status({ request: { tier: 'silver' }, choices }))).toBe('tier:silver');
    expect(currentChoice(status({ choices }))).toBe('');
  });
});
