"""The discrete-event engine: replays a trace under one strategy and records what every GPU did.

Why an event engine and not a time-stepped loop: cells last seconds to hours and sessions days, so stepping
a clock would be either slow or coarse; events (open, submit, kernel ready, cell end, idle check, re-ask,
close) keep every figure exact to the second and let a week of hundreds of users run in seconds.

Model (docs/simulator.md has the long form):
- A session replays its cells in order. A cell is submitted at its trace time, shifted by the delay the
  session has accumulated so far (a user who waited 90 s for a GPU submits everything later by 90 s), and
  never before the previous cell ended. Its wait is submit -> first output (its kernel running it).
- Asking for GPUs calls placement (``placer.ask``). ``run``/``burst`` admit the GPUs at once on that flavor;
  the kernel is usable after the cold start (private or public). ``queue`` waits; queued requests are asked
  again whenever GPUs are freed and, for strategies that may burst, when their wait crosses the burst
  threshold and every ``reask_s`` after, with ``waited_s`` set (so bursts happen per the rule).
- An idle kernel (no cell running) is released after ``release.idle_limit_s`` (the gateway's own rule, fed
  the strategy's idle timeout, the kernel's GPU count, the strategy's or else the policy's release rule and
  the session's gaps so far, measured as the gateway measures them: a cell's end to the next submit).
- GPUs are *held* from admission to release (cold start and restore included) and *busy* while a GPU cell
  runs, with the cell's own GPU count. A cell with no GPU runs on the live GPU kernel if there is one (held,
  not busy). With none, gpu-auto starts a GPU kernel for it and the cell waits, because the gateway starts
  one for any cell that runs code (it cannot know a cell needs no GPU; ``restart_after_release``): the
  last kernel's size, or before the first one the size of the session's first GPU cell (its ``%gpu``
  line), or the policy's default request for a session without GPU cells. Under strategies that do not
  restart it runs without a GPU and without waiting.
- Warm pool (issue 18 §3, ``pool.py``): per flavor, pre-started kernels a cold start of their size
  claims, paying ``claim_s`` plus the restore instead of the cold start; their GPUs count as held (the
  platform's idle GPU-hours), never busy; users' admissions end them first; refilled on demand.
- A kernel started after a release whose state was carried over (``state_carry_over``) restores the
  session's variables before its first cell: ``restore_s`` (the snapshot benchmark's measured restore
  throughput over a per-session size drawn from ``distributions.STATE_SIZE_MB``).
- Perfect foresight (``Strategy.foresight``, a reference for docs/simulator.md): the engine reads the
  session's next submit time, keeps an idle kernel only when a restart could not be ready before it, else
  releases it at once, and "starts working" on each cell exactly one start (and restore) before its submit,
  so the pre-start (through the same rule and placement) is ready as the cell comes.
- Pre-start (issue 18, ``placement.prestart``): the user starts working on a cell ``lead.lead_s`` before
  submitting it (``SimConfig.lead_scale``; 0: never early). At that moment, or when the kernel is released
  while the user is still working, a gpu-auto session whose kernel was released calls
  ``prestart_decision`` (the gateway's function) and, if it may, asks placement for its last kernel's size
  and calls it again with the answer: if it allows, the kernel starts (and restores) before the cell comes.
  As in the gateway, a weighed pre-start uses up the session's chance until a cell has run, whatever
  placement answers. A session that never had a GPU kernel (``cpu_only``) is pre-started too, with
  ``release.prestart.first``: its first code cell's lead runs from the session's open, and the kernel is
  the size of its first GPU cell (its ``%gpu`` line), as the gateway's first launch would be. A pre-started
  kernel no cell used within ``hold`` of being ready is dropped without a new snapshot (the next one
  restores the same state); its GPUs count as held throughout. A pre-start never bursts; a queued
  pre-start (``queue: true``) becomes the cell's own request when it is submitted, and may then burst per
  the rule.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..placement import Action, GpuRequest, Policy, release
from ..placement.prestart import prestart_decision
from . import placer
from . import pool as warm
from .distributions import STATE_SIZE_MB
from .lead import lead_s, spurious_at_s
from .strategies import Strategy
from .trace import Session, Trace


@dataclass(frozen=True)
class SimConfig:
    """Knobs of the model that are not part of a strategy.

    - ``cold_start_private_s`` / ``cold_start_public_s``: admission to first output of a fresh kernel
      (pod start, image pull; public nodes pull the image cold). Defaults 30 s / 90 s.
    - ``reask_s``: while queued and allowed to burst, ask placement again this often after the burst
      threshold has passed. Default 60 s.
    - ``capacity``: per-flavor GPU counts overriding the policy's ``capacity_gpus``.
    - ``restore_mb_per_s`` / ``restore_overhead_s``: a restore of carried-over variables takes
      ``overhead + size / rate`` (docs/snapshots.md, restore through a bucket: 0.25-0.55 s for 1-100 MB,
      180-274 MB/s for 100 MB-2 GB; 200 MB/s and 0.5 s by default).
    - ``warm_pool``: pool size per flavor, overriding the policy's ``warm_pool`` (None: the policy's).
    - ``claim_s``: claiming a warm-pool kernel until it can run the cell, restore aside (rekey, chdir;
      the local benchmark measures it, docs/benchmarks.md). Default 1 s.
    - ``lead_scale``: how early users start working on a cell, as a multiple of ``lead.lead_s``'s
      assumption (1: the assumption, 0.5: half of it); 0 (the default) means never before its submit, so
      pre-start never fires early and the figures are those without it.
    """

    cold_start_private_s: float = 30.0
    cold_start_public_s: float = 90.0
    reask_s: float = 60.0
    capacity: dict[str, int] = field(default_factory=dict)
    restore_mb_per_s: float = 200.0
    restore_overhead_s: float = 0.5
    user_history: bool = False
    warm_pool: dict[str, int] | None = None
    claim_s: float = 1.0
    lead_scale: float = 0.0

    def restore_s(self, session_id: str) -> float:
        """Seconds to restore ``session_id``'s carried-over variables into a new kernel."""
        return self.restore_overhead_s + state_size_mb(session_id) / max(self.restore_mb_per_s, 1e-9)


def state_size_mb(session_id: str) -> float:
    """The session's carried-over variables (MB): a fixed draw from ``STATE_SIZE_MB`` keyed by the session
    id, so every strategy and every replay of a trace (generated or imported) sees the same size."""
    digest = hashlib.blake2b(session_id.encode(), digest_size=8).digest()
    return float(STATE_SIZE_MB.quantile(int.from_bytes(digest, "big") / 2.0**64))


@dataclass
class CellRecord:
    session: str
    index: int
    gpus: int
    submit_s: float
    first_output_s: float | None = None
    end_s: float | None = None
    cold_start: bool = False
    cold_wait_s: float = 0.0  # the part of the wait spent on the kernel's start and restore (not queueing)
    restore_s: float = 0.0  # of which restoring carried-over variables
    claimed: bool = False  # its kernel was a claimed warm-pool kernel
    prestarted: bool = False  # the first cell on a pre-started kernel
    flavor: str | None = None
    rejected: bool = False

    @property
    def wait_s(self) -> float:
        return 0.0 if self.first_output_s is None else self.first_output_s - self.submit_s


@dataclass
class Allocation:
    """One kernel's GPUs: admitted at ``start_s``, given back at ``end_s``."""

    session: str
    flavor: str
    public: bool
    gpus: int
    price_per_gpu_hour: float
    start_s: float
    end_s: float | None = None
    ready_s: float | None = None
    restore_s: float = 0.0  # restoring carried-over variables before the first cell (in start_s..ready_s)
    burst: bool = False
    summary: str = ""  # placement's one-line reason, as the gateway would show it
    cells_run: int = 0
    dropped: bool = False  # released while the session was open, after running cells: state lost
    carried: bool = False  # as ``dropped``, but the strategy carries the state over
    pool: bool = False  # a warm-pool kernel (the platform's): held until claimed or given back
    claimed: bool = False  # a user's kernel that was a claimed warm-pool kernel
    prestart: bool = False  # started by a pre-start, before a cell asked for it
    prestart_dropped: bool = False  # pre-started, and no cell used it within the hold
    queued: bool = False  # its request waited before admission (a pre-start would not have hidden that)


@dataclass(frozen=True)
class BusyInterval:
    """A cell running on a kernel: ``gpus`` it uses (0 for a CPU cell) of the kernel's ``held_gpus``."""

    flavor: str
    gpus: int
    held_gpus: int
    start_s: float
    end_s: float


@dataclass
class RunRecord:
    """Everything one replay produced; ``metrics`` turns it into the report's figures."""

    strategy: Strategy
    cells: list[CellRecord]
    allocations: list[Allocation]
    busy: list[BusyInterval]
    decisions: int
    start_s: float
    end_s: float
    capacity: dict[str, int]
    release_rule: release.ReleaseRule = release.FLAT  # the rule the replay applied (strategy's or policy's)


class _Kernel:
    __slots__ = ("sess", "alloc", "ready", "alive", "busy", "token")

    def __init__(self, sess: _SessionRun, alloc: Allocation) -> None:
        self.sess = sess
        self.alloc = alloc
        self.ready = False
        self.alive = True
        self.busy = False
        self.token = 0


class _Request:
    __slots__ = ("sess", "gpus", "t0", "flavor", "active", "prestart")

    def __init__(self, sess: _SessionRun, gpus: int, t0: float, prestart: bool = False) -> None:
        self.sess = sess
        self.gpus = gpus
        self.t0 = t0
        self.flavor: str | None = None  # the flavor it queues on (counted in that flavor's pending)
        self.active = True
        self.prestart = prestart  # a pre-start's request: never bursts, until its cell is submitted


class _SessionRun:
    __slots__ = (
        "s",
        "i",
        "delay",
        "kernel",
        "request",
        "waiting",
        "closed",
        "prev_end",
        "cpu_only",
        "gaps",
        "idle_since",
        "last_gpus",
        "carried",
        "working",
        "ran_since_prestart",
        "second_chance",
        "rearm_on_drop",
        "started_any",
        "leads",
    )

    def __init__(self, s: Session) -> None:
        self.s = s
        self.i = 0
        self.delay = 0.0
        self.kernel: _Kernel | None = None
        self.request: _Request | None = None
        self.waiting: CellRecord | None = None
        self.closed = False
        self.prev_end = s.open_s
        self.cpu_only = False  # placement rejected this session's GPUs: its GPU cells are skipped
        self.gaps: list[float] = []  # a cell's end to the next submit, as the gateway's status records them
        self.idle_since: float | None = None
        self.last_gpus = 0  # GPUs of the session's latest GPU kernel (a restart after a release asks as many)
        self.carried = False  # the latest release carried state over: the next kernel restores it
        self.working = False  # the user works on the next cell (its lead has begun, it is not submitted)
        self.ran_since_prestart = True  # a cell has run since the last pre-start (none yet: True)
        self.second_chance = False  # that pre-start was dropped unused: one more on a code edit (gateway)
        self.rearm_on_drop = False  # the latest pre-start was the first since a cell ran
        self.started_any = False  # a GPU kernel was admitted for this session (state released, not cpu_only)
        # per kernel a cell used first: how long its pre-start preceded the cell (0: none), as the gateway
        # could see it; read by the benchmark's felt-restart-cost candidate (section 8)
        self.leads: list[float] = []


class Engine:
    """One replay. Use ``simulate(policy, trace, strategy)`` rather than this class directly."""

    def __init__(self, policy: Policy, trace: Trace, strategy: Strategy, config: SimConfig) -> None:
        self.policy = policy
        self.trace = trace
        self.strategy = strategy
        self.config = config
        self.release_rule = strategy.release_rule if strategy.release_rule is not None else policy.release
        self.pools = placer.Pools(policy, config.capacity)
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self.queue: dict[int, _Request] = {}  # insertion-ordered: FIFO
        self.cells: list[CellRecord] = []
        self.allocations: list[Allocation] = []
        self.busy: list[BusyInterval] = []
        self.decisions = 0
        self.now = 0.0
        self.user_gaps: dict[str, list[float]] = {}
        self._private = [n for n, f in policy.flavors.items() if not policy.members[f.member].public]
        sizes = warm.specs(policy, config.warm_pool) if strategy.warm_pool else {}
        self.warm = {n: warm.FlavorPool(spec) for n, spec in sizes.items()}

    # -- event plumbing -------------------------------------------------------------------------------------
    def at(self, t: float, fn: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._heap, (t, next(self._seq), fn, args))

    def run(self) -> RunRecord:
        start = min((s.open_s for s in self.trace.sessions), default=0.0)
        for s in self.trace.sessions:
            self.at(s.open_s, self._open, _SessionRun(s))
        end = start
        while self._heap:
            t, _, fn, args = heapq.heappop(self._heap)
            self.now = end = t
            fn(t, *args)
        return RunRecord(
            self.strategy,
            self.cells,
            self.allocations,
            self.busy,
            self.decisions,
            start,
            end,
            dict(self.pools.capacity),
            self.release_rule,
        )

    # -- session lifecycle ----------------------------------------------------------------------------------
    def _open(self, t: float, sr: _SessionRun) -> None:
        if self.strategy.restart_after_release:  # the first code cell starts a kernel of the %gpu line's size
            first = next((c.gpus for c in sr.s.cells if c.gpus > 0), 0)
            sr.last_gpus = first or self.policy.default_request.gpu_count or 1
        if self.strategy.start == "open" and sr.s.max_gpus > 0:
            self._acquire(t, sr, sr.s.max_gpus)
        self._next_or_close(t, sr)

    def _next_or_close(self, t: float, sr: _SessionRun) -> None:
        if sr.i < len(sr.s.cells):
            cell = sr.s.cells[sr.i]
            submit = max(t, cell.start_s + sr.delay)
            self.at(submit, self._submit, sr)
            if self.strategy.foresight:  # the user "starts working" exactly one restart before the submit
                work_s = submit - self._foresight_start_s(sr)
                if work_s > t:
                    self.at(work_s, self._work_starts, sr, sr.i)
            elif self.strategy.restart_after_release and self.release_rule.prestart.enabled:
                sid, gap, scale = sr.s.session_id, submit - t, self.config.lead_scale
                given = cell.lead_s is not None  # the trace says when the user began (and nothing else)
                lead = min(gap, cell.lead_s or 0.0) if given and scale > 0 else lead_s(sid, sr.i, gap, scale)
                if lead > 0:
                    self.at(submit - lead, self._work_starts, sr, sr.i)
                spurious = None if given else spurious_at_s(sid, sr.i, gap, lead, scale)
                if spurious is not None:
                    self.at(t + spurious, self._spurious_edit, sr, sr.i)
        else:
            self.at(max(t, sr.s.close_s + sr.delay), self._close, sr)

    def _submit(self, t: float, sr: _SessionRun) -> None:
        cell = sr.s.cells[sr.i]
        rec = CellRecord(sr.s.session_id, sr.i, cell.gpus, submit_s=t)
        self.cells.append(rec)
        sr.working = False
        if sr.idle_since is not None:
            sr.gaps.append(t - sr.idle_since)
            if self.config.user_history:
                self.user_gaps.setdefault(sr.s.user, []).append(t - sr.idle_since)
            sr.idle_since = None
        st = self.strategy
        k = sr.kernel
        if sr.cpu_only:
            rec.rejected = cell.gpus > 0
            self._start_cell(t, sr, rec, None)
            return
        if st.size == "session":
            # the server/kernel is the only place cells run: while it is starting or queued, every cell waits
            needs_gpu_kernel = sr.s.max_gpus > 0 and (
                cell.gpus > 0 or st.restart_on_any_cell or k is not None or sr.request is not None
            )
            gpus = sr.s.max_gpus
        else:
            restart = st.restart_after_release and k is None and sr.last_gpus > 0
            needs_gpu_kernel = cell.gpus > 0 or (k is not None and not st.release_after_cell) or restart
            gpus = cell.gpus if cell.gpus > 0 or k is not None else sr.last_gpus
        if not needs_gpu_kernel:
            self._start_cell(t, sr, rec, None)
            return
        if k is not None and k.alloc.gpus < gpus:
            self._release(t, k)  # a bigger cell: re-place with the new size (``%gpu h100:8``)
            k = None
        if k is not None:
            if k.ready:
                self._start_cell(t, sr, rec, k)
            else:
                rec.cold_start = True
                sr.waiting = rec
            return
        rec.cold_start = True
        sr.waiting = rec
        if sr.request is None:
            self._acquire(t, sr, max(gpus, 1))
        elif sr.request.prestart and sr.request.gpus < gpus:
            self._cancel(sr.request)  # a bigger cell than the pre-start asked for: re-place
            self._acquire(t, sr, gpus)
        elif sr.request.prestart:
            self._claim_prestart_request(t, sr.request)

    def _start_cell(self, t: float, sr: _SessionRun, rec: CellRecord, k: _Kernel | None) -> None:
        cell = sr.s.cells[rec.index]
        rec.first_output_s = t
        rec.end_s = t + cell.duration_s
        sr.ran_since_prestart, sr.second_chance = True, False
        if k is not None:
            rec.prestarted = k.alloc.prestart and k.alloc.cells_run == 0
            if k.alloc.cells_run == 0:  # what the gateway sees of a start: the lead a pre-start had, or none
                sr.leads.append(max(0.0, rec.submit_s - k.alloc.start_s) if rec.prestarted else 0.0)
            k.busy = True
            k.token += 1
            k.alloc.cells_run += 1
            rec.flavor = k.alloc.flavor
            used = min(cell.gpus, k.alloc.gpus)
            self.busy.append(BusyInterval(k.alloc.flavor, used, k.alloc.gpus, t, rec.end_s))
        self.at(rec.end_s, self._cell_end, sr, k)

    def _cell_end(self, t: float, sr: _SessionRun, k: _Kernel | None) -> None:
        cell = sr.s.cells[sr.i]
        sr.delay = max(sr.delay, t - cell.end_s)
        sr.prev_end = t
        sr.idle_since = t
        sr.i += 1
        if k is not None and k.alive:
            k.busy = False
            k.token += 1
            if self.strategy.release_after_cell:
                self._release(t, k)
            else:
                self._arm_idle_check(t, k)
        self._next_or_close(t, sr)

    def _close(self, t: float, sr: _SessionRun) -> None:
        sr.closed = True
        if sr.request is not None:
            self._cancel(sr.request)
        k = sr.kernel
        if k is not None and k.alive:
            if self.strategy.linger_after_close_s > 0:
                self.at(t + self.strategy.linger_after_close_s, self._linger_end, k)
            else:
                self._release(t, k)

    def _linger_end(self, t: float, k: _Kernel) -> None:
        if k.alive:
            self._release(t, k)

    def _arm_idle_check(self, t: float, k: _Kernel) -> None:
        """The kernel just went idle: release it after the release rule's limit unless a cell comes first."""
        if self.strategy.foresight:  # keep it only if a restart for the next cell could not be ready in time
            nxt = self._next_submit_s(t, k.sess)
            if nxt is None or nxt - t > self._foresight_start_s(k.sess):
                self.at(t, self._idle_check, k, k.token)
            return
        gaps = self.user_gaps.get(k.sess.s.user, []) if self.config.user_history else k.sess.gaps
        limit = release.idle_limit_s(self.strategy.idle_timeout_s, k.alloc.gpus, self.release_rule, gaps)
        if k.alloc.prestart and k.alloc.cells_run == 0:
            limit = self.release_rule.prestart.hold_s  # a pre-start nobody used: dropped after the hold
        if limit is not None:
            self.at(t + limit, self._idle_check, k, k.token)

    def _idle_check(self, t: float, k: _Kernel, token: int) -> None:
        if k.alive and not k.busy and k.token == token:
            self._release(t, k)

    def _next_submit_s(self, t: float, sr: _SessionRun) -> float | None:
        """When the session's next cell will be submitted (``foresight`` only: the gateway cannot know)."""
        if sr.i >= len(sr.s.cells):
            return None
        return max(t, sr.s.cells[sr.i].start_s + sr.delay)

    def _foresight_start_s(self, sr: _SessionRun) -> float:
        """A restart's time to usable for ``foresight``: the private cold start, the restore of the session's
        variables once a kernel has run, and a second of margin (a pre-start never goes public)."""
        restore = (
            self.config.restore_s(sr.s.session_id)
            if sr.started_any and self.strategy.state_carry_over
            else 0.0
        )
        return self.config.cold_start_private_s + restore + 1.0

    # -- GPUs -----------------------------------------------------------------------------------------------
    def _request(self, sr: _SessionRun, gpus: int, waited_s: float, prestart: bool = False) -> GpuRequest:
        s, d = sr.s, self.policy.default_request
        burst = self.strategy.may_burst and not prestart
        return GpuRequest(
            gpu_model=s.gpu_model,
            tier=s.tier if s.gpu_model is None else None,
            gpu_count=gpus,
            burstable=bool(s.burstable if s.burstable is not None else d.burstable) and burst,
            budget=(s.budget or d.budget) if burst else "fixed",
            data_class=s.data_class or d.data_class,
            waited_s=waited_s,
        )

    def _acquire(self, t: float, sr: _SessionRun, gpus: int) -> None:
        req = _Request(sr, gpus, t)
        sr.request = req
        if not self._ask(t, req) and req.active and self.strategy.may_burst:
            first = t + self.policy.burst.threshold_s + 1.0
            self.at(max(first, t + 1.0), self._reask, req)

    def _ask(self, t: float, req: _Request) -> bool:
        """Ask placement for ``req``; True when it got GPUs (or was rejected), False when it waits."""
        self.decisions += 1
        d = placer.ask(
            self.policy,
            self.pools,
            self._request(req.sess, req.gpus, t - req.t0, req.prestart),
            t,
            self.trace.epoch,
        )
        if req.prestart and d.action is Action.REJECT:
            self._cancel(req)  # the cell meets the rejection when it runs
            return True
        if req.prestart and d.action is Action.BURST:
            self._enqueue(req, None)  # a pre-start never bursts: it waits for private GPUs
            return False
        if (
            d.action in (Action.RUN, Action.BURST)
            and d.flavor is not None
            and self.pools.free(d.flavor) >= req.gpus
        ):
            self._admit(t, req, d.flavor, d.action is Action.BURST, d.summary)
            return True
        if d.action is Action.REJECT:
            self._cancel(req)
            sr = req.sess
            sr.cpu_only = True
            if sr.waiting is not None:
                rec, sr.waiting = sr.waiting, None
                rec.rejected, rec.cold_start = True, False
                self._start_cell(t, sr, rec, None)
            return True
        self._enqueue(req, d.flavor)
        return False

    def _reask(self, t: float, req: _Request) -> None:
        if req.active and not self._ask(t, req) and req.active:
            self.at(t + self.config.reask_s, self._reask, req)

    def _enqueue(self, req: _Request, flavor: str | None) -> None:
        if req.flavor is not None:
            self.pools.pending[req.flavor] -= 1
        req.flavor = flavor
        if flavor is not None:
            self.pools.pending[flavor] += 1
        key = id(req)
        if key not in self.queue:
            self.queue[key] = req

    def _cancel(self, req: _Request) -> None:
        req.active = False
        if req.flavor is not None:
            self.pools.pending[req.flavor] -= 1
            req.flavor = None
        self.queue.pop(id(req), None)
        if req.sess.request is req:
            req.sess.request = None

    def _admit(self, t: float, req: _Request, flavor: str, burst: bool, summary: str) -> None:
        self._cancel(req)
        f = self.policy.flavors[flavor]
        public = self.policy.members[f.member].public
        fp = self.warm.get(flavor)
        pk = fp.ready(req.gpus) if fp is not None else None
        if fp is not None and req.gpus == fp.spec.gpus:
            fp.wanted = True  # a cold start of the pool's size: claimed or missed, the pool is wanted
        if fp is not None and pk is not None:
            self._pool_end(t, fp, pk, claimed=True)
        else:
            self._make_room(t, flavor, req.gpus)
            self.pools.admit(flavor, req.gpus, t)
        alloc = Allocation(
            req.sess.s.session_id,
            flavor,
            public,
            req.gpus,
            f.price_per_gpu_hour,
            t,
            burst=burst,
            summary=summary,
        )
        self.allocations.append(alloc)
        alloc.prestart = req.prestart
        alloc.queued = t > req.t0
        k = _Kernel(req.sess, alloc)
        sr = req.sess
        sr.kernel = k
        sr.last_gpus = req.gpus
        sr.started_any = True
        cold = self.config.cold_start_public_s if public else self.config.cold_start_private_s
        if pk is not None:
            cold = self.config.claim_s
            alloc.claimed = True
        if sr.carried:
            alloc.restore_s = self.config.restore_s(sr.s.session_id)
            sr.carried = False
        self.at(t + cold + alloc.restore_s, self._ready, sr, k)
        if fp is not None:
            self.at(t, self._refill_event)  # after the admissions of this instant (a drain admits several)

    def _ready(self, t: float, sr: _SessionRun, k: _Kernel) -> None:
        if not k.alive:
            return
        k.ready = True
        k.alloc.ready_s = t
        if sr.waiting is not None:
            rec, sr.waiting = sr.waiting, None
            rec.cold_wait_s = t - max(rec.submit_s, k.alloc.start_s)
            rec.restore_s = min(k.alloc.restore_s, rec.cold_wait_s)
            rec.claimed = k.alloc.claimed
            self._start_cell(t, sr, rec, k)
        else:
            self._arm_idle_check(t, k)

    def _release(self, t: float, k: _Kernel) -> None:
        k.alive = False
        a = k.alloc
        a.end_s = t
        self.pools.release(a.flavor, a.gpus)
        if k.sess.kernel is k:
            k.sess.kernel = None
        if a.cells_run > 0 and not k.sess.closed:
            if self.strategy.state_carry_over:
                a.carried = k.sess.carried = True
            else:
                a.dropped = True
        elif a.cells_run == 0 and a.restore_s > 0:
            k.sess.carried = True  # nothing ran on it: the next kernel restores the same snapshot
        if a.prestart and a.cells_run == 0:
            a.prestart_dropped = True
            k.sess.second_chance = k.sess.rearm_on_drop
        if k.sess.working and not k.sess.closed:
            self.at(t, self._prestart, k.sess)  # released while the user types: the next keystroke asks
        self._drain(t)
        self._refill(t)

    def _drain(self, t: float) -> None:
        """GPUs were freed: ask again for queued requests that could now fit, oldest first."""
        if not self.queue:
            return
        free_private = max((self.pools.free(f) for f in self._private), default=0)
        free_any = self.pools.max_free()
        for req in list(self.queue.values()):
            if free_any <= 0:
                break
            could_burst = (
                self.strategy.may_burst and self._request(req.sess, req.gpus, 0.0, req.prestart).burstable
            )
            if req.active and (free_any if could_burst else free_private) >= req.gpus:
                if self._ask(t, req):
                    free_private = max((self.pools.free(f) for f in self._private), default=0)
                    free_any = self.pools.max_free()

    # -- pre-start ------------------------------------------------------------------------------------------
    def _work_starts(self, t: float, sr: _SessionRun, index: int) -> None:
        """The user starts working on cell ``index`` (its lead): the extension asks for a pre-start."""
        if sr.closed or sr.i != index:
            return
        sr.working = True
        self._prestart(t, sr)

    def _spurious_edit(self, t: float, sr: _SessionRun, index: int) -> None:
        """The user types without running anything (before the lead of cell ``index``): one pre-start."""
        if sr.closed or sr.i != index or sr.working:
            return
        sr.working = True
        self._prestart(t, sr)
        sr.working = False

    def _prestart(self, t: float, sr: _SessionRun) -> None:
        """The gateway's answer to ``{"action": "prestart"}``: placement, then ``prestart_decision``."""
        if sr.closed or not sr.working or sr.cpu_only:
            return
        prestart = self.release_rule.prestart
        if sr.kernel is not None or sr.request is not None:
            return  # running, starting or queued: the gateway ignores the action
        state = "released" if sr.started_any else "cpu_only"
        weigh, _ = prestart_decision(
            prestart,
            state=state,
            ran_since_last_prestart=sr.ran_since_prestart,
            member_public=False,
            admitted_now=True,
            paid=False,
            code_cell=True,  # replayed cells run code; a spurious edit counts as code too (its worst case)
            second_chance=sr.second_chance,
        )
        if not weigh:
            return
        # one chance per cell that ran, whatever placement answers (gateway); a first one dropped unused
        # gives one more (prestart.py)
        sr.rearm_on_drop, sr.ran_since_prestart, sr.second_chance = sr.ran_since_prestart, False, False
        gpus = max(sr.last_gpus, 1)
        self.decisions += 1
        d = placer.ask(self.policy, self.pools, self._request(sr, gpus, 0.0, True), t, self.trace.epoch)
        flavor = self.policy.flavors.get(d.flavor) if d.flavor is not None else None
        public = d.action is Action.BURST or (
            flavor is not None and self.policy.members[flavor.member].public
        )
        admitted = d.action is Action.RUN and d.flavor is not None and self.pools.free(d.flavor) >= gpus
        queued = d.action is Action.QUEUE and d.flavor is not None
        start, _ = prestart_decision(
            prestart,
            state=state,
            ran_since_last_prestart=True,
            member_public=public,
            admitted_now=admitted,
            paid=flavor is not None and flavor.price_per_gpu_hour > 0,
            code_cell=True,
        )
        if not start or not (admitted or queued) or d.flavor is None:
            return
        req = _Request(sr, gpus, t, prestart=True)
        sr.request = req
        if admitted:
            self._admit(t, req, d.flavor, False, d.summary)
        else:
            self._enqueue(req, d.flavor)

    def _claim_prestart_request(self, t: float, req: _Request) -> None:
        """The cell came while its pre-start still queues: the request becomes the cell's own (it may burst
        now, per the rule, counting its wait from the cell's submit as the user sees it)."""
        req.prestart = False
        req.t0 = t
        if self.strategy.may_burst:
            self.at(t + self.policy.burst.threshold_s + 1.0, self._reask, req)

    # -- warm pool ------------------------------------------------------------------------------------------
    def _make_room(self, t: float, flavor: str, gpus: int) -> None:
        """End warm-pool kernels of ``flavor`` until ``gpus`` are unused (the pool has the lowest priority);
        kernels still starting go first, they are furthest from use."""
        fp = self.warm.get(flavor)
        while fp is not None and self.pools.unused(flavor) < gpus and fp.live():
            victim = min(fp.live(), key=lambda k: k.ready)
            self._pool_end(t, fp, victim, claimed=False)

    def _pool_end(self, t: float, fp: warm.FlavorPool, pk: warm.PoolKernel, claimed: bool) -> None:
        """``pk`` leaves the pool: claimed by a user (its GPUs become theirs) or given back."""
        fp.forget(pk)
        alloc = pk.alloc
        assert isinstance(alloc, Allocation)
        alloc.end_s = t
        self.pools.preemptible[pk.flavor] -= pk.gpus
        if not claimed:
            self.pools.release(pk.flavor, pk.gpus)
        self.at(t, self._refill_event)

    def _refill_event(self, t: float) -> None:
        self._refill(t)

    def _refill(self, t: float) -> None:
        """Start pool kernels where a pool is wanted and short, on GPUs nobody uses or queues for."""
        for flavor, fp in self.warm.items():
            while (
                fp.missing() > 0
                and self.pools.unused(flavor) >= fp.spec.gpus
                and self.pools.pending[flavor] == 0
            ):
                f = self.policy.flavors[flavor]
                public = self.policy.members[f.member].public
                alloc = Allocation("(warm pool)", flavor, public, fp.spec.gpus, f.price_per_gpu_hour, t)
                alloc.pool = True
                self.allocations.append(alloc)
                self.pools.used[flavor] += fp.spec.gpus
                self.pools.preemptible[flavor] += fp.spec.gpus
                pk = warm.PoolKernel(flavor, fp.spec.gpus, alloc)
                fp.kernels.append(pk)
                cold = self.config.cold_start_public_s if public else self.config.cold_start_private_s
                self.at(t + cold, self._pool_ready, fp, pk)

    def _pool_ready(self, t: float, fp: warm.FlavorPool, pk: warm.PoolKernel) -> None:
        if not pk.alive:
            return
        pk.ready = True
        assert isinstance(pk.alloc, Allocation)
        pk.alloc.ready_s = t
        self.at(t + fp.spec.idle_s, self._pool_expire, fp, pk)

    def _pool_expire(self, t: float, fp: warm.FlavorPool, pk: warm.PoolKernel) -> None:
        """Nobody claimed ``pk`` within the pool's idle limit: give it back and refill only on demand."""
        if pk.alive:
            fp.wanted = False
            self._pool_end(t, fp, pk, claimed=False)


def simulate(policy: Policy, trace: Trace, strategy: Strategy, config: SimConfig | None = None) -> RunRecord:
    """Replay ``trace`` under ``strategy`` against ``policy``'s pools."""
    engine = Engine(policy, trace, strategy, config or SimConfig())
    return engine.run()
