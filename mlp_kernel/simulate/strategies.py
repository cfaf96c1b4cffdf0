"""The GPU-holding strategies compared by the simulator, as data the engine interprets.

Each strategy answers the same four questions: when is a GPU asked for, how many, when is it given back,
and may it burst. Keeping them as values (not subclasses with their own event code) means one engine
replays all of them with identical cell timing, cold starts and placement, so differences in the report
come from the strategy alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from ..placement.release import FLAT, ReleaseRule, describe

HOUR = 3600.0


@dataclass(frozen=True)
class Strategy:
    """How one deployment style holds GPUs.

    - ``start``: ``"open"`` asks for GPUs when the notebook session opens (server or kernel start);
      ``"gpu_cell"`` when a cell that uses a GPU is submitted and none is held.
    - ``size``: ``"session"`` holds the most GPUs any cell of the session uses (a profile/kernelspec chosen
      up front); ``"cell"`` holds what the submitting cell uses (a bigger cell re-places).
    - ``idle_timeout_s``: give the GPUs back after this long with no cell running; None = never while open.
    - ``release_rule``: how ``idle_timeout_s`` applies to a kernel's GPU count
      (``mlp_kernel.placement.release``, the gateway's rule); None = the policy's ``release``. The baselines
      are ``FLAT``: conventional cullers do not look at the GPU count.
    - ``release_after_cell``: give the GPUs back as soon as each cell ends (per-cell pods).
    - ``linger_after_close_s``: GPUs stay held this long after the user closes the session.
    - ``restart_on_any_cell``: after a release, any cell (CPU ones too) starts the GPU kernel again,
      because the notebook's only kernel is the GPU kernel.
    - ``restart_after_release``: the same for per-cell sizing (gpu-auto): a cell that runs code and finds
      no GPU kernel starts one and waits for it, GPU code or not (the gateway cannot tell): the last
      kernel's size, before the first one the session's first GPU cell's (its ``%gpu`` line).
    - ``may_burst``: the session's ``burstable``/``budget`` are passed to placement; otherwise the request
      is sent with ``burstable=False`` (conventional deployments never leave the private cluster).
    - ``warm_pool``: cold starts may claim the flavor's warm-pool kernels (the policy's ``warm_pool`` or
      ``SimConfig.warm_pool``); conventional deployments have none.
    - ``state_carry_over``: a release keeps the user's variables (snapshot and restore), so it is counted
      as carried, not as a dropped kernel.
    - ``foresight``: a reference, not a deployable strategy (``foresight()``): the release and the
      pre-start know when every cell will be submitted (not what it needs), ``Engine._foresight_start_s``.
    """

    name: str
    description: str
    start: Literal["open", "gpu_cell"]
    size: Literal["session", "cell"]
    idle_timeout_s: float | None
    release_after_cell: bool = False
    linger_after_close_s: float = 0.0
    restart_on_any_cell: bool = False
    restart_after_release: bool = False
    may_burst: bool = False
    state_carry_over: bool = False
    release_rule: ReleaseRule | None = FLAT
    warm_pool: bool = False
    foresight: bool = False


SERVER_HELD = Strategy(
    name="server-held",
    description="KubeSpawner GPU profile: GPUs held from server start to stop; the idle culler stops the "
    "server 60 min after the last activity, and an open browser tab counts as activity",
    start="open",
    size="session",
    idle_timeout_s=None,
    linger_after_close_s=1 * HOUR,
)

KERNEL_CULLED = Strategy(
    name="kernel-culled",
    description="a GPU pod per kernel from kernel start, culled after 60 min without execution "
    "(cull_idle_timeout=3600, cull_connected=True); the next cell restarts it",
    start="open",
    size="session",
    idle_timeout_s=1 * HOUR,
    restart_on_any_cell=True,
)

PER_CELL = Strategy(
    name="per-cell",
    description="a GPU pod per GPU cell, returned when the cell ends (lower bound on held GPUs; every GPU "
    "cell pays a cold start)",
    start="gpu_cell",
    size="cell",
    idle_timeout_s=0.0,
    release_after_cell=True,
)


def gpu_auto(
    idle_timeout_s: float, state_carry_over: bool = False, release_rule: ReleaseRule | None = None
) -> Strategy:
    """Ours: start on the first GPU cell, private first, the burst rule, release per the release rule
    (``None``: the policy's) after the idle timeout."""
    rule = "the policy's release rule" if release_rule is None else describe(idle_timeout_s, release_rule)
    return Strategy(
        name="gpu-auto",
        description=f"GPU (auto): start on the first GPU cell, private first, burst per the rule, release "
        f"after {idle_timeout_s / 60:g} min idle ({rule})",
        start="gpu_cell",
        size="cell",
        idle_timeout_s=idle_timeout_s,
        may_burst=True,
        restart_after_release=True,
        state_carry_over=state_carry_over,
        release_rule=release_rule,
        warm_pool=True,
    )


def foresight(state_carry_over: bool = False) -> Strategy:
    """gpu-auto with perfect foresight of *when* each cell comes (not of what it needs): what no release
    rule and no pre-start signal can beat on held GPU-hours (docs/simulator.md, "Perfect foresight"). No
    warm pool: its kernels' idle GPU-hours would count as held, and timing alone hides every start."""
    return replace(
        gpu_auto(0.0, state_carry_over),
        name="foresight",
        description="a reference, not a strategy: gpu-auto knowing when every cell will be submitted; it "
        "keeps the kernel through a gap only when a restart could not be ready in time, else releases it at "
        "once and starts the next one one start (and restore) before the cell",
        foresight=True,
        warm_pool=False,
    )


BASELINES = (SERVER_HELD, KERNEL_CULLED, PER_CELL)
NAMES = ("server-held", "kernel-culled", "per-cell", "gpu-auto")
"""The strategies run by default; ``foresight`` (a reference) only when asked for by name."""


def by_name(
    name: str, idle_timeout_s: float, state_carry_over: bool = False, release_rule: ReleaseRule | None = None
) -> Strategy:
    """The strategy called ``name``; ``gpu-auto`` gets the given idle timeout and release rule (None: the
    policy's)."""
    if name == "gpu-auto":
        return gpu_auto(idle_timeout_s, state_carry_over, release_rule)
    if name == "foresight":
        return foresight(state_carry_over)
    for s in BASELINES:
        if s.name == name:
            return s
    raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(NAMES)}, foresight")


def with_idle_timeout(strategy: Strategy, idle_timeout_s: float) -> Strategy:
    return replace(
        strategy,
        idle_timeout_s=idle_timeout_s,
        description=gpu_auto(idle_timeout_s, release_rule=strategy.release_rule).description
        if strategy.name == "gpu-auto"
        else strategy.description,
    )
