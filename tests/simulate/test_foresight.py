"""The perfect-foresight reference (``foresight``): a hand-made trace with its answer worked out, and the
properties that make it a reference on generated weeks (no release rule holds less; with room on the
cluster no restart is felt).

tiny-policy.yaml: private ``small`` has 2 GPUs (free), public ``big`` 8; cold start 30 s; pre-start enabled.
Without state carried over a restart is ready 30 s after admission, so foresight's start time is 31 s (a
second of margin).
"""

from __future__ import annotations

import pytest

from mlp_kernel.placement.release import FLAT, ReleaseRule
from mlp_kernel.simulate import Cell, Session, SimConfig, Trace, generate, gpu_auto, simulate, summarise
from mlp_kernel.simulate.strategies import by_name, foresight

CONFIG = SimConfig(cold_start_private_s=30.0, cold_start_public_s=90.0)


def test_it_keeps_the_kernel_only_through_gaps_shorter_than_a_restart(tiny_policy):
    """Cell 0 waits its cold start (0-30) and runs 30-90, so later submits are 30 s late. Cell 1 comes at
    130: a 40 s gap is longer than a restart (31 s), so the kernel is released at 90 and started again at
    99, ready at 129: cell 1 does not wait. Cell 2 comes at 210, 20 s after cell 1 ends: kept. After the
    last cell the kernel is released at once (270)."""
    cells = (Cell(0, 60, 1), Cell(100, 60, 1), Cell(180, 60, 1))
    trace = Trace.of([Session("a", "alice", 0.0, 3600.0, cells)])
    run = simulate(tiny_policy, trace, foresight(), CONFIG)
    assert [round(c.wait_s, 6) for c in run.cells] == [30.0, 0.0, 0.0]
    assert [(a.start_s, a.end_s) for a in run.allocations] == [(0.0, 90.0), (99.0, 270.0)]
    assert summarise(run).gpu_h_held == pytest.approx((90 + 171) / 3600)


def test_a_restore_lengthens_the_restart_it_plans_for(tiny_policy):
    """With state carried over, the second kernel restores the session's variables first, so it is started
    that much earlier and still ready for the cell."""
    cells = (Cell(0, 60, 1), Cell(400, 60, 1))
    trace = Trace.of([Session("a", "alice", 0.0, 3600.0, cells)])
    run = simulate(tiny_policy, trace, foresight(state_carry_over=True), CONFIG)
    restore = CONFIG.restore_s("a")
    assert restore > 0
    second = run.allocations[1]
    assert second.start_s == pytest.approx(430.0 - 31.0 - restore)
    assert second.restore_s == pytest.approx(restore)
    assert [round(c.wait_s, 6) for c in run.cells] == [30.0, 0.0]


def test_it_is_named_and_described_as_a_reference():
    s = by_name("foresight", 900.0, True)
    assert s.foresight and s.state_carry_over and s.name == "foresight" and not s.warm_pool
    assert "not a strategy" in s.description
    with pytest.raises(ValueError, match="foresight"):
        by_name("oracle", 900.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_release_rule_holds_less(platform_policy, seed):
    """On generated weeks, every shipped release rule at several idle timeouts (pre-start on, the lead
    assumption) holds more GPU-hours than foresight, which only ever holds through a gap what a restart
    would have held anyway."""
    trace = generate(users=8, days=2, seed=seed)
    config = SimConfig(lead_scale=1.0)
    bound = summarise(simulate(platform_policy, trace, foresight(True), config)).gpu_h_held
    for rule in (ReleaseRule(), FLAT, ReleaseRule(kind="predictive")):
        for idle_s in (0.0, 120.0, 900.0):
            run = simulate(platform_policy, trace, gpu_auto(idle_s, True, rule), config)
            assert bound < summarise(run).gpu_h_held, (rule.kind, idle_s)


def test_with_room_on_the_cluster_no_restart_is_felt(platform_policy):
    """With four times the policy's GPUs nothing queues, so the only GPU cells that wait are a session's
    first (submitted sooner after the open than a kernel starts) and one that needs more GPUs than the
    kernel it found (re-placed when submitted)."""
    trace = generate(users=8, days=2, seed=3)
    room = {n: 4 * f.capacity_gpus for n, f in platform_policy.flavors.items()}
    run = simulate(platform_policy, trace, foresight(True), SimConfig(capacity=room))
    sessions = {s.session_id: s for s in trace.sessions}
    waited = [c for c in run.cells if c.wait_s > 0]
    assert waited, "the first cells must wait for their kernel"
    for c in waited:
        earlier = [x.gpus for x in sessions[c.session].cells[: c.index] if x.gpus > 0]
        bigger = c.gpus > max(earlier, default=0) and c.gpus > 0
        assert c.index == 0 or bigger, c
    assert summarise(run).bursts == 0
