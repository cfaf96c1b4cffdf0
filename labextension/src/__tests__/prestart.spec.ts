import { PRESTART_RESEND_MS, PrestartTrigger, codeForFirstKernel, prestartLine } from '../prestart';
import { IPrestartInfo, IStatus } from '../types';

function status(state: IStatus['state'], prestart: Partial<IPrestartInfo> | null): IStatus {
  const info = prestart
    ? { ready: false, first: false, second: false, holding: false, hold_s: 120, message: '', ...prestart }
    : null;
  return { type: 'status', version: 1, state, prestart: info };
}

describe('PrestartTrigger', () => {
  let now = 0;
  let sent = 0;
  let cells: string[] = [];
  let open = true;
  const make = (): PrestartTrigger =>
    new PrestartTrigger(
      cell => {
        if (open) {
          sent += 1;
          cells.push(cell);
        }
        return open;
      },
      () => now
    );

  beforeEach(() => {
    now = 1000;
    sent = 0;
    cells = [];
    open = true;
  });

  it('sends one prestart for many keystrokes while the gateway says ready', () => {
    const t = make();
    t.onStatus(status('released', { ready: true }));
    expect(t.onActivity('code')).toBe(true);
    for (let i = 0; i < 50; i++) {
      now += 100;
      expect(t.onActivity('code')).toBe(false);
    }
    expect(sent).toBe(1);
  });

  it('sends nothing unless the gateway says ready in the released state', () => {
    const t = make();
    t.onActivity('code');
    t.onStatus(status('released', { ready: false }));
    t.onActivity('code');
    t.onStatus(status('released', null)); // pre-start off in the policy
    t.onActivity('code');
    t.onStatus(status('running', { ready: true }));
    t.onActivity('code');
    t.onStatus(null); // not a GPU (auto) kernel
    t.onActivity('code');
    t.onStatus(status('cpu_only', { ready: true })); // never had a GPU kernel: only `first` may start one
    t.onActivity('code', 'x = 1');
    t.onStatus(status('released', { first: true })); // `first` is for a notebook that never had a kernel
    t.onActivity('code', 'x = 1');
    expect(sent).toBe(0);
    t.onStatus(status('released', { ready: true }));
    expect(t.onActivity('code')).toBe(true);
  });

  it('waits for the next chance once the gateway took the action, however long the typing goes on', () => {
    const t = make();
    t.onStatus(status('released', { ready: true }));
    t.onActivity('code');
    t.onStatus(status('starting', { holding: true }));
    t.onStatus(status('running', { holding: true }));
    t.onStatus(status('released', { ready: false, message: 'dropped after 2 min unused' }));
    now += 10 * PRESTART_RESEND_MS;
    expect(t.onActivity('code')).toBe(false);
    t.onStatus(status('running', {})); // a cell ran
    t.onStatus(status('released', { ready: true })); // ... and the kernel was released again
    expect(t.onActivity('code')).toBe(true);
    expect(sent).toBe(2);
  });

  it('sends again only when an action was not acknowledged for a long time (a lost comm)', () => {
    const t = make();
    t.onStatus(status('released', { ready: true }));
    t.onActivity('code');
    now += PRESTART_RESEND_MS - 1;
    t.onStatus(status('released', { ready: true }));
    expect(t.onActivity('code')).toBe(false);
    now += 1;
    expect(t.onActivity('code')).toBe(true);
    expect(sent).toBe(2);
  });

  it('does not count an action the closed comm could not send', () => {
    const t = make();
    t.onStatus(status('released', { ready: true }));
    open = false;
    expect(t.onActivity('code')).toBe(false);
    open = true;
    expect(t.onActivity('code')).toBe(true);
    expect(sent).toBe(1);
  });
});

describe('PrestartTrigger, the first GPU kernel', () => {
  let now = 1000;
  const sent: string[] = [];
  const make = (): PrestartTrigger =>
    new PrestartTrigger(
      cell => {
        sent.push(cell);
        return true;
      },
      () => now
    );

  beforeEach(() => {
    now = 1000;
    sent.length = 0;
  });

  it('asks for a notebook that never had a GPU kernel only when code is typed, once, saying so', () => {
    const t = make();
    t.onStatus(status('cpu_only', { first: true }));
    expect(t.onActivity('markdown', '# Results')).toBe(false); // writing text takes no GPU
    expect(t.onActivity('run')).toBe(false); // nor does running a markdown cell
    expect(t.onActivity('code', '')).toBe(false); // nothing typed yet (a cell cleared)
    expect(t.onActivity('code', '%g')).toBe(false); // may still become a %gpu line
    expect(t.onActivity('code', '%gpu a100\nimport torch')).toBe(false); // the cell asks for its own GPU
    expect(t.onActivity('code', 'i')).toBe(true);
    now += 100;
    expect(t.onActivity('code', 'im')).toBe(false);
    expect(sent).toEqual(['code']);
  });

  it('takes code for the first kernel unless the cell begins with a %gpu line', () => {
    expect(codeForFirstKernel('import torch')).toBe(true);
    expect(codeForFirstKernel('\n   \n  x = 1')).toBe(true);
    expect(codeForFirstKernel('%matplotlib inline')).toBe(true);
    expect(codeForFirstKernel('x = 1\n%gpu a100')).toBe(true); // not a %gpu line: only the top ones are
    expect(codeForFirstKernel('')).toBe(false);
    expect(codeForFirstKernel('  \n')).toBe(false);
    expect(codeForFirstKernel('%')).toBe(false);
    expect(codeForFirstKernel('%gp')).toBe(false);
    expect(codeForFirstKernel('\n%gpu tier=gold')).toBe(false);
  });

  it('sends nothing for a code edit when the gateway does not offer the first kernel', () => {
    const t = make();
    t.onStatus(status('cpu_only', { first: false })); // release.prestart.first off, or already tried
    expect(t.onActivity('code', 'x = 1')).toBe(false);
    t.onStatus(status('cpu_only', null)); // pre-start off in the policy
    expect(t.onActivity('code', 'x = 1')).toBe(false);
    t.onStatus(null); // not a GPU (auto) kernel
    expect(t.onActivity('code', 'x = 1')).toBe(false);
    expect(sent).toEqual([]);
  });

  it('says what the activity was for a released notebook (any activity counts there)', () => {
    const t = make();
    t.onStatus(status('released', { ready: true }));
    expect(t.onActivity('markdown')).toBe(true);
    t.onStatus(status('running', {}));
    t.onStatus(status('released', { ready: true }));
    expect(t.onActivity('run')).toBe(true);
    expect(sent).toEqual(['markdown', 'run']);
  });

  it('waits for the next chance after the first kernel was taken and dropped back to cpu_only', () => {
    const t = make();
    t.onStatus(status('cpu_only', { first: true }));
    expect(t.onActivity('code', 'x = 1')).toBe(true);
    t.onStatus(status('running', { holding: true }));
    t.onStatus(status('cpu_only', { first: false, message: 'dropped after 2 min unused: first kernel' }));
    now += 10 * PRESTART_RESEND_MS;
    expect(t.onActivity('code', 'x = 2')).toBe(false);
    expect(sent).toEqual(['code']);
  });

  it('takes the second chance after an unused pre-start with a code edit only, once', () => {
    const t = make();
    t.onStatus(status('released', { ready: true }));
    expect(t.onActivity('markdown')).toBe(true); // a note: the pre-start goes unused
    t.onStatus(status('running', { holding: true }));
    t.onStatus(status('released', { second: true, message: 'dropped after 2 min unused' }));
    expect(t.onActivity('markdown')).toBe(false);
    expect(t.onActivity('run')).toBe(false);
    expect(t.onActivity('code', 'model.fit(x)')).toBe(true);
    now += 100;
    expect(t.onActivity('code', 'model.fit(x, y)')).toBe(false);
    t.onStatus(status('running', { holding: true }));
    t.onStatus(status('released', { message: 'dropped after 2 min unused' })); // no third
    now += 10 * PRESTART_RESEND_MS;
    expect(t.onActivity('code', 'model.fit(x, y, epochs=3)')).toBe(false);
    expect(sent).toEqual(['markdown', 'code']);
  });
});

describe('prestartLine', () => {
  it('says what the pre-start does and what the gateway said last', () => {
    expect(prestartLine(status('running', { holding: true, hold_s: 120 }))).toBe(
      'Pre-started when you started typing: given back after 2 min if no cell runs.'
    );
    expect(prestartLine(status('starting', { holding: true }))).toBe(
      'Pre-starting the GPU kernel because you started typing.'
    );
    expect(prestartLine(status('released', { message: 'dropped after 2 min unused' }))).toBe(
      'Pre-start: dropped after 2 min unused.'
    );
    expect(prestartLine(status('released', {}))).toBe('');
    expect(prestartLine(status('released', null))).toBe('');
    expect(prestartLine(null)).toBe('');
  });
});
