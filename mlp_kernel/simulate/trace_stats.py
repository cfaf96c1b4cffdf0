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


def samples(sessions: Iterable[Session]) -> dict[str, np.ndarray]:
    """The raw values each published figure summarises, keyed like ``distributions.TARGETS``."""
    sessions = list(sessions)
    cells = [c for s in sessions for c in s.cells]
    gpu_cells = [c for c in cells if c.gpus > 0]
    timed = [s for s in sessions if s.close_s > s.open_s]
    out = {
        "session_length_s": np.array([s.close_s - s.open_s for s in sessions]),
        "cells_per_session": np.array([len(s.cells) for s in sessions]),
        "cell_duration_s": np.array([c.duration_s for c in cells]),
        "gap_s": np.array([g for s in sessions for g in iter_gaps(s)]),
        # Busy = GPU cells running. The kernel-busy share (any cell running) is kept alongside because the
        # published figure does not define it (docs/simulator.md, "Reconciling the targets").
        "busy_fraction": np.array([s.busy_s / (s.close_s - s.open_s) for s in timed]),
        "kernel_busy_fraction": np.array(
            [sum(c.duration_s for c in s.cells) / (s.close_s - s.open_s) for s in timed]
        ),
        "cpu_cell": np.array([c.gpus == 0 for c in cells], dtype=float),
    }
    for g in (1, 2, 4, 8):
        out[f"gpus_per_gpu_cell_{g}"] = np.array([c.gpus == g for c in gpu_cells], dtype=float)
    return out


def describe(sessions: Iterable[Session]) -> dict[str, dict[str, float]]:
    """Quantiles (p25..p99) and means of every sample; shares for the yes/no ones."""
    stats: dict[str, dict[str, float]] = {}
    for name, values in samples(sessions).items():
        if len(values) == 0:
            stats[name] = {}
        elif name.startswith(("cpu_cell", "gpus_per_gpu_cell")):
            stats[name] = {"share": float(values.mean())}
        else:
            stats[name] = {f"p{p}": float(np.percentile(values, p)) for p in (25, 50, 75, 90, 99)}
            stats[name]["mean"] = float(values.mean())
    return stats


def compare(sessions: Iterable[Session]) -> list[tuple[str, str, float, float]]:
    """``(metric, statistic, target, measured)`` for every published target."""
    stats = describe(sessions)
    return [(name, stat, target, stats[name][stat]) for name, stat, target in TARGETS]
