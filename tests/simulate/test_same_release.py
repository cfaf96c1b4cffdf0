"""The simulator releases an idle kernel exactly when the live gateway's idle timer would.

If the engine ever grew its own copy of the release arithmetic, its held/busy figures would stop
describing the product's behaviour. Both sides share ``placement.release.idle_limit_s`` (the simulator can
import nothing from the gateway: the "simulator" contract in pyproject.toml, checked by ``lint-imports``);
these tests check the behaviour that sharing gives: for every size and rule, the simulated kernel is released
at the end of its last cell plus the limit the gateway's status reports for the same kernel. The
``predictive`` rule also reads the notebook's gaps: the gateway's status records them as its session does
(``idle_since`` when a cell ends, ``cell_submitted`` when the next comes), the engine as it replays.
"""

from __future__ import annotations

import pytest

from mlp_kernel.gateway.status import GatewayStatus
from mlp_kernel.placement.release import FLAT, ReleaseRule
from mlp_kernel.simulate import Cell, Session, SimConfig, Trace, gpu_auto, simulate

RULES = [
    ReleaseRule(),
    ReleaseRule(min_idle_s=60.0),
    ReleaseRule(min_idle_s=1000.0),
    FLAT,
    ReleaseRule(kind="predictive"),
    ReleaseRule(kind="predictive", history=2),
]


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


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.kind}-{r.min_idle_s:g}-{r.history}")
@pytest.mark.parametrize("gpus", [1, 2])
@pytest.mark.parametrize(
    "gaps", [(300.0, 420.0, 600.0), (2000.0, 2500.0, 3000.0), (60.0, 5000.0, 90.0, 120.0)], ids=str
)
def test_after_a_session_s_gaps_both_release_at_the_same_time(tiny_policy, rule, gpus, gaps):
    """Cells of 100 s separated by ``gaps``; a release in a long gap restarts the kernel for the next cell
    (30 s later, so later cells shift) but leaves the gaps as they were. The last kernel is released at the
    last cell's end plus what the gateway's status, fed the same gaps as its session feeds it, says."""
    cells, t = [], 0.0
    for gap in (*gaps, None):
        cells.append(Cell(t, 100.0, gpus))
        t += 100.0 + (gap or 0.0)
    trace = Trace.of([Session("s", "alice", 0.0, t + 50000.0, tuple(cells))])
    config = SimConfig(cold_start_private_s=30.0)
    run = simulate(tiny_policy, trace, gpu_auto(900.0, release_rule=rule), config)
    ends = [c.end_s for c in run.cells]
    assert [c.submit_s - e for c, e in zip(run.cells[1:], ends, strict=False)] == pytest.approx(list(gaps))

    status = GatewayStatus(
        kernel_id="k", state="running", gpu_count=gpus, idle_timeout_s=900.0, release_rule=rule
    )
    for cell, end in zip(run.cells[1:], ends, strict=False):
        status.idle_since = end  # what RemoteSession._end_busy records
        status.cell_submitted(cell.submit_s)
    assert status.gaps_s == pytest.approx(list(gaps))
    limit = status.idle_limit()
    assert limit is not None
    assert run.allocations[-1].end_s == pytest.approx(ends[-1] + limit)
