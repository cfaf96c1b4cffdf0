"""PNG plots of a simulation (matplotlib, Agg backend: no display needed, works in CI and on servers).

Two figures: GPUs held vs busy over time per strategy (where the waste is, and when), and the idle-timeout
sweep as a trade-off curve (held/busy against cold-start share and against added wait). matplotlib is
imported inside the functions so the simulator itself does not need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from .engine import RunRecord
from .metrics import StrategyResult
from .study import COLD_SHARE_LIMIT

HOUR = 3600.0


def step_average(intervals: Sequence[tuple[float, float, int]], edges: np.ndarray) -> np.ndarray:
    """Mean level in each bin of ``edges`` of the sum of ``(start, end, gpus)`` intervals (exact)."""
    if not intervals:
        return np.zeros(len(edges) - 1)
    times = np.array([t for s, e, _ in intervals for t in (s, e)])
    deltas = np.array([d for _, _, g in intervals for d in (g, -g)], dtype=float)
    order = np.argsort(times, kind="stable")
    times, level = times[order], np.cumsum(deltas[order])
    # integral of the step function from the first event up to each event time, then up to each edge
    seg = np.diff(times, append=times[-1]) * level
    cum = np.concatenate([[0.0], np.cumsum(seg)])[: len(times)]
    area = np.interp(edges, times, cum, left=0.0, right=cum[-1])
    return np.diff(area) / np.diff(edges)


def plot_held_vs_busy(runs: Sequence[RunRecord], path: str | Path, bin_s: float = 1800.0) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = min(r.start_s for r in runs)
    end = max(r.end_s for r in runs)
    edges = np.arange(start, end + bin_s, bin_s)
    fig, axes = plt.subplots(len(runs), 1, figsize=(10, 2.2 * len(runs) + 0.6), sharex=True, sharey=True)
    axes = np.atleast_1d(axes)
    hours = (edges[:-1] - start) / HOUR
    for ax, run in zip(axes, runs, strict=True):
        held = step_average(
            [(a.start_s, a.end_s if a.end_s is not None else run.end_s, a.gpus) for a in run.allocations],
            edges,
        )
        busy = step_average([(b.start_s, b.end_s, b.gpus) for b in run.busy if b.gpus > 0], edges)
        ax.fill_between(hours, held, step="post", alpha=0.35, color="tab:red", label="GPUs held")
        ax.fill_between(hours, busy, step="post", alpha=0.8, color="tab:green", label="GPUs busy")
        ax.axhline(sum(run.capacity.values()), color="grey", lw=0.8, ls=":", label="capacity (all flavors)")
        ax.set_title(run.strategy.name, loc="left", fontsize=10)
        ax.set_ylabel("GPUs")
    axes[0].legend(loc="upper right", fontsize=8, ncol=3)
    axes[-1].set_xlabel("hours since trace start")
    fig.suptitle("GPUs held vs busy (mean per 30 min)")
    fig.tight_layout()
    return _save(fig, path)


def plot_idle_sweep(
    sweep: Sequence[StrategyResult],
    path: str | Path,
    label: str = "gpu-auto",
    compare: Sequence[StrategyResult] = (),
    compare_label: str = "flat",
) -> Path:
    """The sweep as trade-off curves; ``compare`` (e.g. the same sweep under the flat release rule) is drawn
    next to it on the left panel, so two rules can be compared at equal cold-start share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratio = [r.held_per_busy for r in sweep]
    cold = [100 * r.cold_start_share for r in sweep]
    wait = [max(r.wait_mean_s, 0.1) for r in sweep]
    cold_wait = [max(r.wait_cold_mean_s, 0.1) for r in sweep]  # log axis: keep 0 visible
    labels = [f"{(r.idle_timeout_s or 0) / 60:g} min" for r in sweep]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    a.plot(cold, ratio, "o-", color="tab:blue", label=label)
    if compare:
        a.plot(
            [100 * r.cold_start_share for r in compare],
            [r.held_per_busy for r in compare],
            "^:",
            color="grey",
            label=compare_label,
        )
        for r in compare:
            a.annotate(
                f"{(r.idle_timeout_s or 0) / 60:g}",
                (100 * r.cold_start_share, r.held_per_busy),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize=7,
                color="grey",
            )
    a.axvline(
        100 * COLD_SHARE_LIMIT, color="tab:red", ls="--", lw=1, label=f"{COLD_SHARE_LIMIT:.0%} cold starts"
    )
    a.set_xlabel("GPU cells with a cold start (%)")
    a.set_ylabel("GPU-hours held / busy")
    a.legend(fontsize=8)
    b.plot(wait, ratio, "o-", color="tab:purple", label="all waiting (cold starts + queueing)")
    b.plot(cold_wait, ratio, "s--", color="tab:orange", label="cold starts only")
    b.set_xscale("log")  # cold-start waits are seconds, queueing minutes: both stay readable
    b.set_xlabel("mean wait per GPU cell, submit to first output (s, log scale)")
    b.legend(fontsize=8)
    b.set_ylabel("GPU-hours held / busy")
    for ax, xs in ((a, cold), (b, wait)):
        for x, y, text in zip(xs, ratio, labels, strict=True):
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    for x, y, text in zip(cold_wait, ratio, labels, strict=True):
        b.annotate(text, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7, color="tab:orange")
    a.grid(alpha=0.3)
    b.grid(alpha=0.3)
    fig.suptitle(f"{label}, idle timeout swept: GPUs held vs cold starts and added wait")
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Figure, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p
