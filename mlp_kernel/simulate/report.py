"""Text and JSON forms of a simulation: strategies side by side, the idle sweep, spend against budget.

The text table puts strategies in columns and metrics in rows, so four strategies and a dozen metrics fit a
terminal and the eye compares along a row. The JSON form carries every figure unrounded for notebooks and CI.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..placement.units import format_duration
from .metrics import StrategyResult
from .study import COLD_SHARE_LIMIT, cold_share_crossing


def _h(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}"


def _s(x: float) -> str:
    return format_duration(x) if x >= 60 else f"{x:.0f} s"


_ROWS: tuple[tuple[str, Callable[[StrategyResult], str]], ...] = (
    ("idle release", lambda r: r.release_rule),
    ("GPU-hours held", lambda r: _h(r.gpu_h_held)),
    ("GPU-hours busy", lambda r: _h(r.gpu_h_busy)),
    ("held / busy", lambda r: f"{r.held_per_busy:.2f}x"),
    ("idle GPU-hours", lambda r: _h(r.gpu_h_idle)),
    ("  of which CPU cells on a GPU", lambda r: _h(r.idle_breakdown_gpu_h.get("cpu_cells", 0.0))),
    ("  of which waiting for cells", lambda r: _h(r.idle_breakdown_gpu_h.get("waiting", 0.0))),
    ("  of which cold starts", lambda r: _h(r.idle_breakdown_gpu_h.get("cold_start", 0.0))),
    ("  of which the warm pool", lambda r: _h(r.idle_breakdown_gpu_h.get("warm_pool", 0.0))),
    ("cells with a cold start", lambda r: f"{r.cold_start_cells:,}"),
    ("  share of GPU cells", lambda r: f"{r.cold_start_share:.0%}"),
    ("  of which claimed a warm-pool kernel", lambda r: f"{r.claimed_cells:,}"),
    ("pre-starts (cells that used one)", lambda r: f"{r.prestarts:,} ({r.prestarted_cells:,})"),
    (
        "  dropped unused (GPU-hours)",
        lambda r: f"{r.prestarts_dropped:,} ({_h(r.prestart_dropped_gpu_h)})",
    ),
    (
        "releases dropping a live kernel",
        lambda r: (
            f"{r.dropped_kernels:,}" + (f" (+{r.carried_kernels:,} carried)" if r.carried_kernels else "")
        ),
    ),
    ("CPU cells waiting for a restart", lambda r: f"{r.restart_cpu_cells:,}"),
    ("added latency p50 (GPU cells)", lambda r: _s(r.added_p50_s)),
    ("added latency p95", lambda r: _s(r.added_p95_s)),
    ("added latency p99", lambda r: _s(r.added_p99_s)),
    ("  p95 of its start + restore part", lambda r: _s(r.start_p95_s)),
    ("  p95 of its restore part", lambda r: _s(r.restore_p95_s)),
    ("GPU cells waiting > 10 s", lambda r: f"{r.waited_over_10s_share:.0%}"),
    ("  all cells waiting > 10 s", lambda r: f"{r.code_cells_over_10s_share:.0%}"),
    ("cells waiting > X", lambda r: f"{r.slow_cells:,}"),
    ("bursts", lambda r: f"{r.bursts:,}"),
    ("public spend", lambda r: f"${r.public_spend_usd:,.0f}"),
    ("rejected GPU cells", lambda r: f"{r.rejected_cells:,}"),
    ("placement calls", lambda r: f"{r.decisions:,}"),
)


def format_table(results: Sequence[StrategyResult]) -> str:
    """Strategies side by side."""
    if not results:
        return "(no strategies)"
    rows: list[tuple[str, ...]] = [("", *[r.strategy for r in results])]
    x = results[0].slow_s
    for label, fn in _ROWS:
        label = label.replace("X", _s(x)) if label.endswith("> X") else label
        rows.append((label, *[fn(r) for r in results]))
    for flavor in results[0].flavors:
        cap = results[0].flavors[flavor].capacity_gpus
        rows.append(
            (
                f"{flavor} ({cap} GPUs) held / busy",
                *[
                    f"{r.flavors[flavor].held_share:.0%} / {r.flavors[flavor].busy_share:.0%}"
                    for r in results
                ],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row))
        )
        if n == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def format_sweep(sweep: Sequence[StrategyResult]) -> str:
    """The gpu-auto idle-timeout sweep, one row per timeout, and where the cold-start share crosses 25%."""
    head = (
        f"{'idle timeout':>12}  {'held/busy':>9}  {'cold starts':>11}  {'wait mean':>9}  "
        f"{'of it cold':>10}  {'wait p95':>8}  {'dropped':>7}  {'public $':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in sweep:
        t = r.idle_timeout_s or 0.0
        lines.append(
            f"{_s(t):>12}  {r.held_per_busy:>8.2f}x  {r.cold_start_share:>11.0%}  "
            f"{_s(r.wait_mean_s):>9}  {_s(r.wait_cold_mean_s):>10}  {_s(r.wait_p95_s):>8}  "
            f"{r.dropped_kernels:>7,}  "
            f"{r.public_spend_usd:>9,.0f}"
        )
    crossing = cold_share_crossing(sweep)
    if crossing is None:
        side = "above" if sweep and min(r.cold_start_share for r in sweep) > COLD_SHARE_LIMIT else "below"
        lines.append(f"cold-start share stays {side} {COLD_SHARE_LIMIT:.0%} across the sweep")
    else:
        lines.append(
            f"cold-start share crosses {COLD_SHARE_LIMIT:.0%} at an idle timeout of "
            f"~{_s(crossing)} (shorter timeouts cold-start more cells)"
        )
    return "\n".join(lines)


def format_budget(results: Sequence[StrategyResult], budget_usd: float | None) -> str:
    parts = []
    for r in results:
        if budget_usd:
            verdict = "within" if r.public_spend_usd <= budget_usd else "OVER"
            parts.append(
                f"{r.strategy}: ${r.public_spend_usd:,.0f} of ${budget_usd:,.0f} "
                f"({r.public_spend_usd / budget_usd:.0%}, {verdict} budget)"
            )
        else:
            parts.append(f"{r.strategy}: ${r.public_spend_usd:,.0f}")
    return "public spend: " + "; ".join(parts)


def to_json(
    results: Sequence[StrategyResult],
    sweep: Sequence[StrategyResult],
    budget_usd: float | None,
    **context: Any,
) -> dict[str, Any]:
    return {
        **context,
        "budget_usd": budget_usd,
        "strategies": [r.to_json() for r in results],
        "sweep": [r.to_json() for r in sweep],
        "cold_share_crossing_s": cold_share_crossing(sweep) if sweep else None,
        "over_budget": [r.strategy for r in results if budget_usd and r.public_spend_usd > budget_usd],
    }
