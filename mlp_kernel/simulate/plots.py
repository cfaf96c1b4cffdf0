"""PNG plots of a simulation (matplotlib, Agg backend: no display needed, works in CI and on servers).

Two figures: GPUs held vs busy over time per strategy (where the waste is, and when), and the idle-timeout
sweep as trade-off curves, one per release rule and warm-pool size (held/busy against the p95 added start
latency and against the share of GPU cells waiting > 10 s, issue 18's targets shaded). matplotlib is
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
from .study import Curve

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


TARGET_HELD_PER_BUSY = 1.10
TARGET_P95_S = 30.0
TARGET_OVER_10S = 0.20
"""Issue 18's targets, drawn on the trade-off plot: held/busy <= 1.10, p95 added latency <= 30 s, <= 20% of
GPU cells waiting more than 10 s."""


REFERENCE_LABEL = "perfect foresight (a reference, not a rule)"


def plot_trade_off(
    curves: Sequence[Curve], path: str | Path, title: str = "", reference: StrategyResult | None = None
) -> Path:
    """Each (release rule, warm-pool size, lead) sweep as a curve: held/busy against the p95 added start
    latency (left) and against the share of GPU cells that waited more than 10 s (right), issue 18's targets
    shaded. Colour is the rule, the marker the pool size, solid lines pre-start with a lead, dashed (paler)
    without; each point annotated with its idle timeout. ``reference``: the ``foresight`` run on the same
    trace, drawn as a black star (what no rule can beat on held GPU-hours, docs/simulator.md)."""
    return _save(trade_off_figure(curves, title, reference), path)


def trade_off_figure(
    curves: Sequence[Curve], title: str = "", reference: StrategyResult | None = None
) -> Figure:
    """The figure ``plot_trade_off`` saves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    colours = {"flat": "tab:grey", "gpu-minutes": "tab:blue", "predictive": "tab:green"}
    sizes = sorted({c.pool for c in curves})
    markers = ["o", "s", "^", "D", "v"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 5.4), sharey=True)
    for c in curves:
        style = markers[sizes.index(c.pool) % len(markers)] + ("-" if c.lead else "--")
        alpha = 1.0 if c.lead else 0.45
        ys = [r.held_per_busy for r in c.points]
        for ax, xs in (
            (a, [max(r.added_p95_s, 1.0) for r in c.points]),  # log axis: keep 0 s visible
            (b, [100 * r.waited_over_10s_share for r in c.points]),
        ):
            ax.plot(
                xs, ys, style, color=colours.get(c.rule, "tab:red"), label=c.label, ms=4, lw=1.2, alpha=alpha
            )
            for x, y, r in zip(xs, ys, c.points, strict=True):
                ax.annotate(
                    f"{(r.idle_timeout_s or 0) / 60:g}", (x, y), textcoords="offset points", xytext=(3, 3),
                    fontsize=6, color=colours.get(c.rule, "tab:red"),
                )  # fmt: skip
    if reference is not None:
        for ax, x in ((a, max(reference.added_p95_s, 1.0)), (b, 100 * reference.waited_over_10s_share)):
            ax.plot([x], [reference.held_per_busy], "*", color="black", ms=12, label=REFERENCE_LABEL)
    a.set_xscale("log")
    a.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    a.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    for ax, limit in ((a, TARGET_P95_S), (b, 100 * TARGET_OVER_10S)):
        ax.axhline(TARGET_HELD_PER_BUSY, color="tab:red", ls="--", lw=0.8)
        ax.axvline(limit, color="tab:red", ls="--", lw=0.8)
        ax.fill_between([ax.get_xlim()[0], limit], 0, TARGET_HELD_PER_BUSY, color="tab:red", alpha=0.06)
        ax.grid(alpha=0.3)
    a.set_ylim(bottom=1.0)
    a.set_xlabel("p95 added start latency of GPU cells (s, log scale; queueing, start, restore)")
    b.set_xlabel("GPU cells waiting > 10 s for a kernel (%)")
    a.set_ylabel("GPU-hours held / busy")
    b.legend(fontsize=7, ncol=1, loc="upper right")
    fig.suptitle(
        title
        or "gpu-auto, idle timeout swept (minutes at each point), per release rule, warm-pool size and "
        "pre-start lead; issue 18's target region shaded",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p
