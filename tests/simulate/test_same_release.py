"""The simulator releases an idle kernel exactly when the live gateway's idle timer would.

If the engine ever grew its own copy of the release arithmetic, its held/busy figures would stop
describing the product's behaviour. Both sides share ``placement.release.idle_limit_s`` (the simulator can
import nothing from the gateway: the "simulator" contract in pyproject.toml, checked by ``lint-imports``);
these tests check the behaviour that sharing gives: for every size and rule, the simulated kernel is released
at the end of its last cell plus the limit the gateway's status reports for the same kernel.
"""

from __future__ import annotations

import pytest

from mlp_kernel.gateway.status import GatewayStatus
from mlp_kernel.placement.release import FLAT, ReleaseRule
from mlp_kernel.simulate import Cell, Session, SimConfig, Trace, gpu_auto, simulate

RULES = [ReleaseRule(), ReleaseRule(min_idle_s=60.0), ReleaseRule(min_idle_s=1000.0), FLAT]


def gateway_limit(idle_timeout_s: float, gpus: int, rule: ReleaseRule) -> float | None:
    """What the live gateway's status says a running kernel of this size may stay idle."""
    status = GatewayStatus(
        kernel_id="k", state="running", gpu_count=gpus, idle_timeout_s=idle_timeout_s, release_rule=rule
    )
    return status.idle_limit()


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.kind}-{r.min_idle_s:g}")
@pytest.mark.parametrize("gpus", [1, 2])
@pytest.mark.parametrize("idle_timeout_s", [120.0, 900.0, 3600.0])
def test_the_simulated_release_comes_when_the_gateway_would_release(tiny_policy, idle_timeout_s, gpus, rule):
    """One 600 s cell after a 30 s cold start ends at 630 s; the kernel is then released after the
    gateway's limit for its size under the rule."""
    trace = Trace.of([Session("s", "alice", 0.0, 20000.0, (Cell(0, 600, gpus),))])
    run = simulate(
        tiny_policy, trace, gpu_auto(idle_timeout_s, release_rule=rule), SimConfig(cold_start_private_s=30.0)
    )
    [allocation] = run.allocations
    limit = gateway_limit(idle_timeout_s, gpus, rule)
    assert limit is not None
    assert allocation.gpus == gpus and allocation.end_s == pytest.approx(630.0 + limit)


def test_a_bigger_kernel_is_released_sooner_in_both(tiny_policy):
    """The rule's point, seen from both sides: under gpu-minutes two GPUs idle half as long as one."""
    ends = {}
    for gpus in (1, 2):
        trace = Trace.of([Session("s", "alice", 0.0, 20000.0, (Cell(0, 600, gpus),))])
        [allocation] = simulate(
            tiny_policy,
            trace,
            gpu_auto(900.0, release_rule=ReleaseRule(min_idle_s=60.0)),
            SimConfig(cold_start_private_s=30.0),
        ).allocations
        ends[gpus] = allocation.end_s
    assert ends == {1: 630.0 + 900.0, 2: 630.0 + 450.0}
    assert gateway_limit(900.0, 2, ReleaseRule(min_idle_s=60.0)) == 450.0
