"""Measure a trace the way the published characteristics are stated, so generator and targets can be compared.

Used by the calibration test, the benchmark and the docs; also useful on a user's own exported trace to see
how it differs from the default generated one.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .distributions import TARGETS
from .generator import iter_gaps
from .trace import Session


def describe(sessions: Iterable[Session]) -> dict[str, dict[str, float]]:
    """Quantiles, means and shares keyed like ``distributions.TARGETS``."""
    sessions = list(sessions)
    lengths = np.array([s.close_s - s.open_s for s in sessions])
    counts = np.array([len(s.cells) for s in sessions])
    cells = [c for s in sessions for c in s.cells]
    durations = np.array([c.duration_s for c in cells])
    gaps = np.array([g for s in sessions for g in iter_gaps(s)])
    gpu_cells = [c for c in cells if c.gpus > 0]
    timed = [s for s in sessions if s.close_s > s.open_s]
    # "Busy" as a kernel reports it: executing any cell. The GPU-only share is kept alongside because the
    # published figure does not say which one it is (docs/simulator.md, "Reconciling the targets").
    busy = np.array([sum(c.duration_s for c in s.cells) / (s.close_s - s.open_s) for s in timed])
    gpu_busy = np.array([s.busy_s / (s.close_s - s.open_s) for s in timed])

    def q(values: np.ndarray) -> dict[str, float]:
        if len(values) == 0:
            return {}
        out = {f"p{p}": float(np.percentile(values, p)) for p in (25, 50, 75, 90, 99)}
        out["mean"] = float(values.mean())
        return out

    stats = {
        "session_length_s": q(lengths), "cells_per_session": q(counts), "cell_duration_s": q(durations),
        "gap_s": q(gaps), "busy_fraction": q(busy), "gpu_busy_fraction": q(gpu_busy),
        "cpu_cell": {"share": (len(cells) - len(gpu_cells)) / max(1, len(cells))},
    }
    for g in (1, 2, 4, 8):
        share = sum(c.gpus == g for c in gpu_cells) / max(1, len(gpu_cells))
        stats[f"gpus_per_gpu_cell_{g}"] = {"share": share}
    return stats


def compare(sessions: Iterable[Session]) -> list[tuple[str, str, float, float]]:
    """``(metric, statistic, target, measured)`` for every published target."""
    stats = describe(sessions)
    return [(name, stat, target, stats[name][stat]) for name, stat, target in TARGETS]
