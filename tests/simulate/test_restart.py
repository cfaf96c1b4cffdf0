"""Issue 18 §1: the simulator replays what the gateway does after a release, restores carried-over
variables, and reports the added start latency per GPU cell; and the ``predictive`` rule's gaps.

Policy (tiny-policy.yaml): private flavor ``small`` with 2 GPUs, cold start 30 s, gpu-auto idle timeout
900 s under the default ``gpu-minutes`` rule (a 1-GPU kernel: 900 s). Answers computed by hand below.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlp_kernel.placement.release import ReleaseRule
from mlp_kernel.simulate import KERNEL_CULLED, Cell, Session, SimConfig, Trace, gpu_auto, simulate, summarise
from mlp_kernel.simulate.distributions import STATE_SIZE_MB
from mlp_kernel.simulate.engine import state_size_mb

CONFIG = SimConfig(cold_start_private_s=30.0, cold_start_public_s=90.0)

# c0 (CPU) at 0, c1 (1 GPU) at 100-200, a 2000 s gap, c2 (CPU) at 2200-2260, c3 (1 GPU) 10 s after c2.
CPU_AFTER_RELEASE = Trace.of(
    [
        Session(
            "s",
            "alice",
            0.0,
            9000.0,
            (Cell(0, 50, 0), Cell(100, 100, 1), Cell(2200, 60, 0), Cell(2270, 100, 1)),
        )
    ]
)


def test_a_cpu_cell_after_a_release_restarts_the_gpu_kernel_and_waits_for_it(tiny_policy):
    """As in the gateway, c0 (CPU, the first code cell) starts a 1-GPU kernel (the session's GPU cells'
    size): admitted 0, ready 30, runs 30-80 (30 s late from now on). c1 at 130 runs warm 130-230; released
    230 + 900 = 1130. c2 (CPU) at 2230 restarts a 1-GPU kernel: admitted 2230, ready 2260, runs 2260-2320
    (60 s late). c3 at 2270 + 60 = 2330 finds the kernel warm: runs 2330-2430; released 3330."""
    run = simulate(tiny_policy, CPU_AFTER_RELEASE, gpu_auto(900), CONFIG)
    assert [(a.start_s, a.end_s, a.gpus) for a in run.allocations] == [(0, 1130, 1), (2230, 3330, 1)]
    assert [(c.submit_s, c.first_output_s, c.cold_start) for c in run.cells] == [
        (0, 30, True),
        (130, 130, False),
        (2230, 2260, True),
        (2330, 2330, False),
    ]
    r = summarise(run)
    assert (r.restart_cpu_cells, r.cold_start_cells, r.gpu_cells, r.cold_start_share) == (2, 2, 2, 0.0)
    assert (r.waited_over_10s_share, r.code_cells_over_10s_share) == (0.0, 0.5)
    assert r.idle_breakdown_gpu_h["cpu_cells"] == pytest.approx(110 / 3600)


def test_kernel_culled_starts_its_pod_when_the_session_opens(tiny_policy):
    """The baseline that always modelled the restart: its pod starts at open (0-30), so c0 waits for it."""
    run = simulate(tiny_policy, CPU_AFTER_RELEASE, KERNEL_CULLED, CONFIG)
    assert run.cells[0].first_output_s == 30 and run.cells[0].cold_start


def test_a_restart_after_a_carried_release_restores_the_variables_first(tiny_policy):
    """With state carried over, the second kernel restores ``restore_s`` (0.5 s + size / 200 MB/s) before
    c2 runs: ready 2230 + 30 + restore. Without carry-over nothing is restored."""
    restore = CONFIG.restore_s("s")
    assert restore == pytest.approx(0.5 + state_size_mb("s") / 200.0)
    carried = simulate(tiny_policy, CPU_AFTER_RELEASE, gpu_auto(900, state_carry_over=True), CONFIG)
    assert [a.restore_s for a in carried.allocations] == [0.0, pytest.approx(restore)]
    c2 = carried.cells[2]
    assert c2.first_output_s == pytest.approx(2260 + restore) and c2.restore_s == pytest.approx(restore)
    plain = simulate(tiny_policy, CPU_AFTER_RELEASE, gpu_auto(900), CONFIG)
    assert [a.restore_s for a in plain.allocations] == [0.0, 0.0]


def test_restore_time_counts_in_the_added_latency_of_the_gpu_cell_that_waits(tiny_policy):
    """One GPU cell after a 2000 s gap: released at 230 + 900, restarted by c2 itself (a GPU cell) at 2330:
    waits 30 s + restore. Added latency over the two GPU cells: 30 and 30 + restore."""
    trace = Trace.of([Session("s", "alice", 0.0, 9000.0, (Cell(100, 100, 1), Cell(2200, 100, 1)))])
    r = summarise(simulate(tiny_policy, trace, gpu_auto(900, state_carry_over=True), CONFIG))
    restore = CONFIG.restore_s("s")
    assert r.added_p50_s == pytest.approx(float(np.percentile([30, 30 + restore], 50)))
    assert r.added_p99_s == pytest.approx(float(np.percentile([30, 30 + restore], 99)))
    assert r.waited_over_10s_share == 1.0
    assert r.restore_p95_s == pytest.approx(float(np.percentile([0, restore], 95)))


def test_state_sizes_are_fixed_per_session_and_follow_the_table():
    assert state_size_mb("alice-s3") == state_size_mb("alice-s3")
    sizes = np.array([state_size_mb(f"u{i}-s0") for i in range(4000)])
    for p, value in ((0.25, 20.0), (0.5, 100.0), (0.9, 2000.0)):
        assert (sizes < value).mean() == pytest.approx(p, abs=0.03)
    assert sizes.min() >= STATE_SIZE_MB.knots[0][1] and sizes.max() <= STATE_SIZE_MB.knots[-1][1]


def _session(sid: str, open_s: float, gaps: tuple[float, ...]) -> Session:
    cells, t = [], open_s
    for gap in (*gaps, None):
        cells.append(Cell(t, 100.0, 1))
        t += 100.0 + (gap or 0.0)
    return Session(sid, "alice", open_s, t + 5000.0, tuple(cells))


def test_predictive_learns_from_the_session_and_optionally_from_the_user_s_earlier_sessions(tiny_policy):
    """alice's first session has gaps of 2000-3000 s: after its third gap the 1-GPU kernel is released at
    once (holding costs more than a 900 GPU-s restart). Her second session: c0 runs 50030-50130, c1 comes
    60 s later. With only the session's gaps (none yet) the kernel is held 900 s (gpu-minutes): c1 runs on
    it 50190-50290, released 51190. With the user's history it is released at once, at 50130."""
    trace = Trace.of([_session("a", 0.0, (2000.0, 2500.0, 3000.0)), _session("b", 50000.0, (60.0,))])
    rule = gpu_auto(900, release_rule=ReleaseRule(kind="predictive"))
    own = simulate(tiny_policy, trace, rule, CONFIG)
    first_b = next(a for a in own.allocations if a.session == "b")
    assert first_b.end_s == pytest.approx(50290 + 900)
    user = simulate(tiny_policy, trace, rule, SimConfig(cold_start_private_s=30.0, user_history=True))
    first_b = next(a for a in user.allocations if a.session == "b")
    assert first_b.end_s == pytest.approx(50130)
    last_a = [a for a in own.allocations if a.session == "a"][-1]
    assert last_a.end_s == pytest.approx(max(c.end_s or 0 for c in own.cells if c.session == "a"))
