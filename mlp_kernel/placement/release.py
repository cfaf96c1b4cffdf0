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

Why no per-session adaptation (holding longer for users whose gaps have been short): measured on the
simulator's generated traces, a rule fed the session's own gap history (release after a multiple of its
observed p75 gap, divided by the GPU count) landed on the same held-versus-cold-start trade-off curve as
this one, and it needs state the gateway would have to keep per notebook (docs/simulator.md, "Release
rule"). The rule is one function of three values so both callers agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .schema import policy_field

RuleKind = Literal["flat", "gpu-minutes"]
RULE_KINDS: tuple[RuleKind, ...] = ("flat", "gpu-minutes")

DEFAULT_MIN_IDLE_S = 180.0
"""The floor of the ``gpu-minutes`` rule: a bit above the median pause between cells (2.7 min in the
published trace the simulator is calibrated on), so a short pause does not cost a big kernel."""


@dataclass(frozen=True)
class ReleaseRule:
    """How the idle timeout applies to kernels of different sizes (policy section ``release``; the module
    docstring says why)."""

    kind: RuleKind = policy_field(
        "rule",
        "`gpu-minutes` (a kernel of N GPUs: `idle_timeout / N`, within `min_idle`..`idle_timeout`) or `flat` "
        "(every kernel: `idle_timeout`, as conventional cullers do)",
        "choice",
        default="gpu-minutes",
        choices=RULE_KINDS,
        hint="flat releases every kernel after idle_timeout; gpu-minutes divides it by the kernel's GPU "
        "count",
    )
    min_idle_s: float = policy_field(
        "min_idle",
        "`gpu-minutes` never releases sooner than this; a bit above the usual pause between cells, so a "
        "short pause does not cost a big kernel. Never lengthens a shorter `idle_timeout`. Ignored by `flat`",
        "duration",
        default=DEFAULT_MIN_IDLE_S,
    )


FLAT = ReleaseRule(kind="flat")
"""Every kernel released after the idle timeout: the conventional culler, and a user's ``%gpu idle=``."""


def idle_limit_s(idle_timeout_s: float | None, gpus: int, rule: ReleaseRule) -> float | None:
    """How long a kernel holding ``gpus`` GPUs may stay idle (no cell running) before it is released.

    ``idle_timeout_s`` is the base timeout: the policy's ``idle_timeout`` (a 1-GPU kernel's limit), or the
    user's ``%gpu idle=`` (then pass ``FLAT``). ``None`` means never release while the session is open and
    gives ``None``; ``0`` releases as soon as the kernel is idle. A kernel with no GPUs counts as one.
    """
    if idle_timeout_s is None:
        return None
    base = max(0.0, float(idle_timeout_s))
    if rule.kind == "flat":
        return base
    return min(base, max(rule.min_idle_s, base / max(1, gpus)))


def describe(idle_timeout_s: float | None, rule: ReleaseRule) -> str:
    """The rule in words, short enough for a status line or a table cell: ``"15 min / GPUs, >= 3 min"``
    (gpu-minutes), ``"after 15 min idle"`` (flat, or when the floor makes every size equal)."""
    if idle_timeout_s is None:
        return "never while open"
    if rule.kind == "flat" or idle_limit_s(idle_timeout_s, 8, rule) == idle_timeout_s:
        return f"after {_minutes(idle_timeout_s)} idle"
    return f"{_minutes(idle_timeout_s)} / GPUs, >= {_minutes(min(rule.min_idle_s, idle_timeout_s))}"


def _minutes(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:g} s"
    return f"{round(seconds / 60, 2):g} min"
