"""The two questions the simulator answers: strategies side by side, and the idle-timeout trade-off.

Both replay the *same* trace with the same model knobs, so every difference in their rows comes from the
strategy (or the timeout) alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..placement import Policy
from ..placement.release import RULE_KINDS, ReleaseRule
from .engine import RunRecord, SimConfig, simulate
from .metrics import StrategyResult, summarise
from .strategies import Strategy, gpu_auto
from .trace import Trace

DEFAULT_SWEEP_MIN = (0, 2, 5, 10, 15, 30, 60, 120, 240)
"""Base idle timeouts (minutes) swept by default. Under the ``gpu-minutes`` release rule the cold-start
share crosses 25% near a base of 1-2 h on the default trace, so the list reaches beyond an hour."""
COLD_SHARE_LIMIT = 0.25


@dataclass(frozen=True)
class Comparison:
    results: list[StrategyResult]
    runs: list[RunRecord]


def compare(
    policy: Policy,
    trace: Trace,
    strategies: Sequence[Strategy],
    config: SimConfig | None = None,
    slow_s: float = 120.0,
) -> Comparison:
    """Replay ``trace`` under each strategy."""
    runs = [simulate(policy, trace, s, config) for s in strategies]
    return Comparison([summarise(r, slow_s) for r in runs], runs)


def idle_sweep(
    policy: Policy,
    trace: Trace,
    timeouts_s: Sequence[float],
    config: SimConfig | None = None,
    slow_s: float = 120.0,
    state_carry_over: bool = False,
    release_rule: ReleaseRule | None = None,
) -> list[StrategyResult]:
    """gpu-auto once per base idle timeout (a 1-GPU kernel's), under ``release_rule`` (None: the policy's)."""
    return [
        summarise(simulate(policy, trace, gpu_auto(t, state_carry_over, release_rule), config), slow_s)
        for t in timeouts_s
    ]


def cold_share_crossing(sweep: Sequence[StrategyResult], limit: float = COLD_SHARE_LIMIT) -> float | None:
    """The idle timeout (s) below which the cold-start share exceeds ``limit``, interpolated between sweep
    points; None when the whole sweep is on one side of the limit."""
    points = sorted((r.idle_timeout_s or 0.0, r.cold_start_share) for r in sweep)
    for (t0, c0), (t1, c1) in zip(points, points[1:], strict=False):
        if (c0 - limit) * (c1 - limit) <= 0 and c0 != c1:
            return float(np.interp(limit, [c1, c0], [t1, t0]))
    return None


DEFAULT_POOL_SIZES = (0, 1)
"""Warm-pool sizes (kernels per private flavor) the curves of ``--idle-sweep`` are drawn for (a second
kernel per flavor adds almost no claims: docs/simulator.md, "The warm pool")."""
DEFAULT_LEADS = (0.0, 1.0)
"""Lead scales the curves are drawn for: no pre-start benefit (0) and the lead assumption (1)."""


@dataclass(frozen=True)
class Curve:
    """One idle-timeout sweep of gpu-auto under one release rule with one warm-pool size."""

    rule: str
    pool: int
    points: list[StrategyResult]
    lead: float = 0.0  # the lead scale (``SimConfig.lead_scale``): 0 = pre-start never fires early

    @property
    def label(self) -> str:
        return f"{self.rule}, pool {self.pool}, " + (
            f"pre-start (lead x{self.lead:g})" if self.lead else "no lead"
        )


def private_pool(policy: Policy, size: int) -> dict[str, int]:
    """``size`` warm-pool kernels on every private flavor, none on public ones (the policy's default)."""
    return {name: size if not policy.members[f.member].public else 0 for name, f in policy.flavors.items()}


def trade_off_curves(
    policy: Policy,
    trace: Trace,
    timeouts_s: Sequence[float],
    config: SimConfig | None = None,
    pool_sizes: Sequence[int] = DEFAULT_POOL_SIZES,
    rules: Sequence[str] = RULE_KINDS,
    slow_s: float = 120.0,
    leads: Sequence[float] = DEFAULT_LEADS,
) -> list[Curve]:
    """The idle sweep once per release rule, warm-pool size and lead scale (state carried over, as gpu-auto
    ships; the policy's pre-start settings): the curves ``--idle-sweep`` draws, held/busy against the added
    start latency."""
    base = config or SimConfig()
    return [
        Curve(
            rule,
            size,
            idle_sweep(
                policy,
                trace,
                timeouts_s,
                replace(base, warm_pool=private_pool(policy, size), lead_scale=lead),
                slow_s,
                True,
                replace(policy.release, kind=rule),  # type: ignore[arg-type]
            ),
            lead,
        )
        for rule in rules
        for lead in leads
        for size in pool_sizes
    ]
