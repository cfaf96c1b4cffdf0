"""A seeded generator of realistic multi-user notebook traces.

Why generated traces: few sites can share their notebook history, yet the strategies only differ in how they
treat the *shape* of activity (long sessions, short bursty cells, long idle stretches). The generator draws
that shape from the published characteristics in ``distributions`` so results are comparable and seeded.

How a session is built (reconciling long sessions with short cells and short gaps, see docs/simulator.md):
1. draw the session length L and the cell count n with a rank correlation (Gaussian copula);
2. draw n cell durations and n-1 "at the notebook" gaps; their sum is the active span A;
3. the slack L - A is the time the notebook stays open while the user is away: a lead-in before the first
   cell, one long "away" stretch inside the session (when n >= 2), and a tail after the last cell before
   the user closes the tab. When A exceeds L, the session is simply as long as its activity.
A user's sessions follow each other, separated by an off time; sessions opened inside the horizon run to
completion. Every user has a habit: a gap scale drawn once (a standard normal ``habit``), and every one of
their "at the notebook" gaps is drawn at the quantile ``Phi(r * habit + sqrt(1 - r^2) * noise)`` of
``ACTIVE_GAP`` with ``r = GAP_HABIT_CORRELATION``. That Gaussian copula keeps the pooled gaps exactly on the
published quantiles while one user's gaps are consistently short and another's long. Each GPU session
has a GPU count (1/2/4/8) that all its GPU cells use; a third of cells use none.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime

import numpy as np

from . import distributions as d
from .trace import DEFAULT_EPOCH, Cell, Session, Trace

DAY = 86400.0


def generate(
    users: int = 30,
    days: float = 2.0,
    seed: int = 0,
    burst_share: float = 0.5,
    epoch: datetime = DEFAULT_EPOCH,
) -> Trace:
    """A trace of ``users`` people over ``days`` days; ``burst_share`` of sessions opt into bursting.

    Opting in means ``burstable=true, budget=flex`` on the session (``%gpu burst=on budget=flex``); the
    others keep the policy's default request. Same arguments, same trace.
    """
    if users < 1 or days <= 0:
        raise ValueError("generate: users must be >= 1 and days > 0")
    rng = np.random.default_rng(seed)
    horizon = days * DAY
    sessions: list[Session] = []
    for u in range(users):
        user = f"user{u:03d}"
        t = float(rng.uniform(0.0, min(DAY, horizon)))
        habit = float(rng.standard_normal())
        k = 0
        while t < horizon:
            s = draw_session(rng, f"{user}-s{k}", user, t, burst_share, habit)
            sessions.append(s)
            k += 1
            t = s.close_s + float(d.OFF_TIME.sample(rng, 1)[0])
    return Trace.of(
        sessions,
        epoch=epoch,
        generator="mlp_kernel.simulate.generator",
        users=users,
        days=days,
        seed=seed,
        burst_share=burst_share,
    )


def generate_sessions(count: int, seed: int = 0) -> list[Session]:
    """``count`` independent sessions all opening at t=0, each its own user with its own habit: the sample
    the calibration test measures."""
    rng = np.random.default_rng(seed)
    return [
        draw_session(rng, f"s{i}", "calibration", 0.0, 0.0, float(rng.standard_normal()))
        for i in range(count)
    ]


def draw_session(
    rng: np.random.Generator,
    session_id: str,
    user: str,
    open_s: float,
    burst_share: float,
    habit: float = 0.0,
) -> Session:
    z_len, z_noise = rng.standard_normal(2)
    rho = d.LENGTH_CELLS_CORRELATION
    z_cells = rho * z_len + math.sqrt(1 - rho * rho) * z_noise
    length = float(d.SESSION_LENGTH.quantile(_phi(z_len)))
    n = max(1, int(round(float(d.CELLS_PER_SESSION.quantile(_phi(z_cells))))))
    gaps = habit_gaps(rng, n - 1, habit)
    session_gpus = d.choose(rng, d.SESSION_GPUS)
    gpu_flags = rng.random(n) >= d.CPU_CELL_SHARE
    durations = d.CELL_DURATION.quantile(cell_duration_quantiles(rng, gpu_flags))

    active = float(durations.sum() + gaps.sum())
    slack = max(0.0, length - active)
    lead_share, away_share = rng.uniform(0.0, 0.15), rng.uniform(0.3, 0.9)
    lead = slack * lead_share
    away = slack * (1 - lead_share) * away_share if n >= 2 else 0.0
    away_at = int(rng.integers(0, n - 1)) if n >= 2 else -1

    cells: list[Cell] = []
    t = open_s + lead
    for i in range(n):
        gpus = session_gpus if gpu_flags[i] else 0
        cells.append(Cell(start_s=t, duration_s=float(durations[i]), gpus=gpus))
        if i < n - 1:
            t += float(durations[i] + gaps[i]) + (away if i == away_at else 0.0)
    close = max(open_s + length, cells[-1].end_s)
    opted_in = bool(rng.random() < burst_share)
    return Session(
        session_id=session_id,
        user=user,
        open_s=open_s,
        close_s=close,
        cells=tuple(cells),
        burstable=True if opted_in else None,
        budget="flex" if opted_in else None,
    )


def habit_gaps(rng: np.random.Generator, count: int, habit: float) -> np.ndarray:
    """``count`` gaps of a user whose habit is ``habit`` (a standard normal; 0 = the median user)."""
    r = d.GAP_HABIT_CORRELATION
    z = r * habit + math.sqrt(1 - r * r) * rng.standard_normal(count)
    return d.ACTIVE_GAP.quantile(0.5 * (1.0 + _erf(z / math.sqrt(2.0))))


def cell_duration_quantiles(
    rng: np.random.Generator, gpu_flags: np.ndarray, cpu_max: float | None = None
) -> np.ndarray:
    """Where in the cell-duration distribution each cell falls (a probability in [0, 1]).

    CPU cells are drawn uniformly below ``cpu_max`` (they are the shorter cells); GPU cells are drawn so
    that the mixture of both is exactly uniform, i.e. the pooled durations follow ``CELL_DURATION``
    whatever ``cpu_max`` is. ``cpu_max=1`` draws both kinds alike.
    """
    a = d.CPU_CELL_DURATION_QUANTILE_MAX if cpu_max is None else cpu_max
    share = d.CPU_CELL_SHARE
    if a < share:
        raise ValueError(f"cpu_max must be >= the CPU cell share {share:.3f}, got {a}")
    u = rng.random(len(gpu_flags))
    below = (a - share) / (1 - share)  # probability mass a GPU cell has under ``a``
    gpu_low = rng.random(len(gpu_flags)) < below
    gpu_u = np.where(gpu_low, u * a, a + u * (1 - a))
    return np.where(gpu_flags, gpu_u, u * a)


def iter_gaps(session: Session) -> Iterator[float]:
    """Gaps from each cell's end to the next cell's submit (never negative)."""
    for a, b in zip(session.cells, session.cells[1:], strict=False):
        yield max(0.0, b.start_s - a.end_s)


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[float])(x)


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
