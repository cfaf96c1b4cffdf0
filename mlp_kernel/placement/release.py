"""When an idle GPU kernel is given back: one pure rule shared by the live gateway and the simulator.

Why a rule and not just a timeout: an idle kernel costs its GPU count per minute (an idle 8-GPU kernel wastes
8 GPU-minutes a minute), while releasing it costs the user the same whatever its size: a cold start on the
next GPU cell, the kernel's state (unless snapshots carry it over) and a fresh trip through the queue. That is
the ski-rental problem: keep renting (holding) until the rent paid equals the price of buying (restarting),
then buy. With a restart worth ``B`` GPU-minutes, the break-even hold time is ``B / gpus``; it never costs
more than twice what perfect foresight of the next cell would cost, whatever the user does. The admin's
``idle_timeout`` states ``B``: how long a 1-GPU kernel may sit idle, i.e. how many GPU-minutes the platform
spends to spare a user one restart.

Rules (``ReleaseRule.kind``):
- ``gpu-minutes`` (the default): a kernel holding ``g`` GPUs is released after ``idle_timeout / g`` idle,
  never sooner than ``min_idle`` (a floor that protects the normal pause between cells) and never later
  than ``idle_timeout``. With 15 min and a 3 min floor: 1 GPU 15 min, 2 GPUs 7.5 min, 4 GPUs 3.75 min,
  8 GPUs 3 min.
- ``flat``: every kernel is released after ``idle_timeout`` idle, whatever its size. A user's explicit
  ``%gpu idle=20m`` means this: flat 20 min for that notebook.
- ``predictive``: learns from the session's own gaps (cell end to the next cell, the last ``history`` of
  them). Holding ``h`` seconds costs ``gpus x min(gap, h)`` GPU-seconds and, when the gap is longer, a
  restart worth ``idle_timeout`` GPU-seconds on top; the rule picks the ``h`` (0 or one of the observed
  gaps, plus a 10% margin) that would have cost least over those gaps. So a user whose gaps are long for
  the kernel's size gets it released at once, one whose gaps are short keeps it just past them. Until
  ``PREDICT_AFTER`` gaps are known it is ``gpu-minutes``. It never holds longer than ``idle_timeout``.

Why the session's own gaps: users differ (one runs a cell every two minutes, another once an hour), and
the population's gaps say little about one user's next gap. On traces where every session draws its gaps
from one distribution, an adaptive rule lands on the fixed rules' trade-off curve; with per-user habits it
can move the curve (docs/simulator.md, "Release rule"). The gaps are an argument, not state kept here:
the gateway keeps them in its status (``GatewayStatus.gaps_s``) and the simulator in its session replay,
and both call this one function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .prestart import Prestart
from .schema import policy_field

RuleKind = Literal["flat", "gpu-minutes", "predictive"]
RULE_KINDS: tuple[RuleKind, ...] = ("flat", "gpu-minutes", "predictive")

PREDICT_AFTER = 3
"""``predictive`` decides from the session's gaps once it has seen this many; before, ``gpu-minutes``."""
MARGIN = 1.1
"""``predictive`` holds 10% past the observed gap it keeps for, so a gap of the same length is covered."""

DEFAULT_MIN_IDLE_S = 180.0
"""The floor of the ``gpu-minutes`` rule: a bit above the median pause between cells (2.7 min in the
published trace the simulator is calibrated on), so a short pause does not cost a big kernel."""


@dataclass(frozen=True)
class ReleaseRule:
    """How the idle timeout applies to kernels of different sizes (policy section ``release``; the module
    docstring says why)."""

    kind: RuleKind = policy_field(
        "rule",
        "`gpu-minutes` (a kernel of N GPUs: `idle_timeout / N`, within `min_idle`..`idle_timeout`), `flat` "
        "(every kernel: `idle_timeout`, as conventional cullers do) or `predictive` (from the notebook's own "
        "gaps between cells: released at once when its next gap will likely cost more GPU-time than a "
        "restart, `idle_timeout` GPU-minutes, kept just past its usual gap otherwise; `gpu-minutes` until it "
        "has seen 3 gaps)",
        "choice",
        default="gpu-minutes",
        choices=RULE_KINDS,
        hint="flat releases every kernel after idle_timeout; gpu-minutes divides it by the kernel's GPU "
        "count; predictive learns from the notebook's own gaps",
    )
    min_idle_s: float = policy_field(
        "min_idle",
        "`gpu-minutes` never releases sooner than this; a bit above the usual pause between cells, so a "
        "short pause does not cost a big kernel. Never lengthens a shorter `idle_timeout`. Ignored by "
        "`flat`; `predictive` uses it only until it has seen enough gaps",
        "duration",
        default=DEFAULT_MIN_IDLE_S,
    )
    history: int = policy_field(
        "history",
        "`predictive` learns from the notebook's last this many gaps between cells (ignored by the others)",
        "integer",
        default=20,
        minimum=1,
    )
    prestart: Prestart = policy_field(
        "prestart",
        "start a released kernel again when the user starts working on a cell, before it runs (section "
        "`release.prestart`, `mlp_kernel/placement/prestart.py`)",
        default_factory=Prestart,
        default_doc="enabled, hold `2m`",
        rule="see below",
    )


FLAT = ReleaseRule(kind="flat")
"""Every kernel released after the idle timeout: the conventional culler, and a user's ``%gpu idle=``."""


def idle_limit_s(
    idle_timeout_s: float | None, gpus: int, rule: ReleaseRule, gaps_s: Sequence[float] = ()
) -> float | None:
    """How long a kernel holding ``gpus`` GPUs may stay idle (no cell running) before it is released.

    ``idle_timeout_s`` is the base timeout: the policy's ``idle_timeout`` (a 1-GPU kernel's limit), or the
    user's ``%gpu idle=`` (then pass ``FLAT``). ``None`` means never release while the session is open and
    gives ``None``; ``0`` releases as soon as the kernel is idle. A kernel with no GPUs counts as one.
    ``gaps_s``: the session's gaps so far, oldest first, from a cell's end to the next cell's submit (only
    ``predictive`` reads them).
    """
    if idle_timeout_s is None:
        return None
    base = max(0.0, float(idle_timeout_s))
    if rule.kind == "flat":
        return base
    n = max(1, gpus)
    recent = [max(0.0, float(g)) for g in gaps_s[-rule.history :]] if rule.kind == "predictive" else []
    if len(recent) < PREDICT_AFTER:
        return min(base, max(rule.min_idle_s, base / n))
    return min(base, _best_hold(recent, n, base))


def _best_hold(gaps: list[float], gpus: int, restart_gpu_s: float) -> float:
    """The hold that would have cost least over ``gaps``: each gap costs ``gpus x min(gap, hold)`` GPU-
    seconds, plus ``restart_gpu_s`` when it outlasts the hold. Candidates: 0 and each gap plus the margin;
    a tie keeps the longer hold (fewer restarts for the same GPU-time)."""
    ordered = sorted(gaps)
    best_h, best_cost = 0.0, restart_gpu_s * len(ordered)
    covered_s, i = 0.0, 0  # the gaps <= h: their sum and count (h only grows)
    for h in sorted({g * MARGIN for g in ordered}):
        while i < len(ordered) and ordered[i] <= h:
            covered_s += ordered[i]
            i += 1
        cost = gpus * covered_s + (len(ordered) - i) * (gpus * h + restart_gpu_s)
        if cost <= best_cost:
            best_h, best_cost = h, cost
    return best_h


def describe(idle_timeout_s: float | None, rule: ReleaseRule) -> str:
    """The rule in words, short enough for a status line or a table cell: ``"15 min / GPUs, >= 3 min"``
    (gpu-minutes), ``"after 15 min idle"`` (flat, or when the floor makes every size equal)."""
    if idle_timeout_s is None:
        return "never while open"
    if rule.kind == "predictive":
        return f"predictive, restart = {_minutes(idle_timeout_s)} x 1 GPU"
    if rule.kind == "flat" or idle_limit_s(idle_timeout_s, 8, rule) == idle_timeout_s:
        return f"after {_minutes(idle_timeout_s)} idle"
    return f"{_minutes(idle_timeout_s)} / GPUs, >= {_minutes(min(rule.min_idle_s, idle_timeout_s))}"


def _minutes(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:g} s"
    return f"{round(seconds / 60, 2):g} min"
