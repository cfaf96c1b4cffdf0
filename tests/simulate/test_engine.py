"""The event engine on tiny hand-made traces, against answers computed by hand in each test's docstring.

Policy (tiny-policy.yaml): private flavor ``small`` with 2 GPUs, public ``big`` with 8 at $2/GPU-hour,
burst threshold 10 min. Cold starts: private 30 s, public 90 s. gpu-auto idle timeout 15 min (900 s) under
the policy's release rule, the default ``gpu-minutes`` (the file has no ``release:``): a 1-GPU kernel is
released after 900 s idle, a 2-GPU one after 900 / 2 = 450 s (tests/simulate/test_release_rule.py has more).
"""

from __future__ import annotations

import pytest

from mlp_kernel.simulate import (
    KERNEL_CULLED,
    PER_CELL,
    SERVER_HELD,
    Cell,
    Session,
    SimConfig,
    Trace,
    gpu_auto,
    simulate,
    summarise,
)

H = 3600.0
CONFIG = SimConfig(cold_start_private_s=30.0, cold_start_public_s=90.0)


def one_session(*cells: Cell, close: float = 7200.0, **fields: object) -> Trace:
    return Trace.of([Session("s", "alice", 0.0, close, tuple(cells), **fields)])  # type: ignore[arg-type]


# Two 1-GPU cells: 600-1200 and 1500-1800 in the trace (a 300 s gap), session open 0-7200.
TWO_CELLS = one_session(Cell(600, 600, 1), Cell(1500, 300, 1))


def test_gpu_auto_starts_on_first_gpu_cell_and_releases_after_idle_timeout(tiny_policy):
    """Admitted at 600, ready 630: c0 runs 630-1230 (waited 30 s, cold). The session is now 30 s late, so c1
    is submitted at 1530 on the warm kernel and runs 1530-1830. Idle timeout fires at 1830+900 = 2730
    while the session is open: one release dropping a live kernel. Held 2730-600 = 2130 s, busy 900 s."""
    run = simulate(tiny_policy, TWO_CELLS, gpu_auto(900), CONFIG)
    r = summarise(run)
    assert [(c.submit_s, c.first_output_s, c.cold_start) for c in run.cells] == [
        (600, 630, True),
        (1530, 1530, False),
    ]
    assert r.gpu_h_held == pytest.approx(2130 / H)
    assert r.gpu_h_busy == pytest.approx(900 / H)
    assert (r.cold_start_cells, r.cold_start_share, r.dropped_kernels) == (1, 0.5, 1)
    assert [a.end_s for a in run.allocations] == [2730]
    assert run.allocations[0].flavor == "small"
    assert r.idle_breakdown_gpu_h["cold_start"] == pytest.approx(30 / H)
    assert r.idle_breakdown_gpu_h["waiting"] == pytest.approx((2130 - 900 - 30) / H)


def test_server_held_holds_from_open_until_an_hour_after_close(tiny_policy):
    """Spawned at open (0), ready at 30, before any cell: no cell waits. Held until close 7200 + the 60 min
    culler = 10800 s; busy 900 s; nothing is dropped while the session is open."""
    r = summarise(simulate(tiny_policy, TWO_CELLS, SERVER_HELD, CONFIG))
    assert r.gpu_h_held == pytest.approx(10800 / H)
    assert r.gpu_h_busy == pytest.approx(900 / H)
    assert r.held_per_busy == pytest.approx(12.0)
    assert (r.cold_start_cells, r.dropped_kernels, r.wait_p95_s) == (0, 0, 0)


def test_kernel_culled_is_culled_after_an_hour_without_execution(tiny_policy):
    """Kernel up at 0 (ready 30); cells run 600-1200 and 1500-1800 with no wait; culled at 1800+3600 = 5400
    with the session still open (dropped). Held 5400 s."""
    r = summarise(simulate(tiny_policy, TWO_CELLS, KERNEL_CULLED, CONFIG))
    assert r.gpu_h_held == pytest.approx(5400 / H)
    assert (r.cold_start_cells, r.dropped_kernels) == (0, 1)


def test_kernel_culled_restarts_on_the_next_cell_even_a_cpu_one(tiny_policy):
    """Culled at 1800+3600 = 5400; a CPU cell at 6000 restarts the GPU kernel (ready 6030, cold), runs
    6030-6090. Then close at 7200+30 releases it. Held 5400 + (7230-6000) = 6630 s."""
    trace = one_session(Cell(600, 600, 1), Cell(1500, 300, 1), Cell(6000, 60, 0))
    run = simulate(tiny_policy, trace, KERNEL_CULLED, CONFIG)
    r = summarise(run)
    assert run.cells[2].first_output_s == 6030 and run.cells[2].cold_start
    assert r.gpu_h_held == pytest.approx(6630 / H)
    assert r.idle_breakdown_gpu_h["cpu_cells"] == pytest.approx(60 / H)
    assert r.cold_start_share == 0.0  # the share counts GPU cells; the cold CPU cell is in cold_start_cells
    assert r.cold_start_cells == 1


def test_per_cell_pays_a_cold_start_every_gpu_cell(tiny_policy):
    """c0: admitted 600, runs 630-1230, released. c1 submitted 1530, admitted, runs 1560-1860, released.
    Held 630 + 330 = 960 s; every GPU cell waited 30 s and each release dropped the kernel."""
    r = summarise(simulate(tiny_policy, TWO_CELLS, PER_CELL, CONFIG))
    assert r.gpu_h_held == pytest.approx(960 / H)
    assert r.gpu_h_busy == pytest.approx(900 / H)
    assert (r.cold_start_cells, r.cold_start_share, r.dropped_kernels) == (2, 1.0, 2)
    assert (r.wait_p50_s, r.wait_p95_s) == (30, 30)


def test_state_carry_over_counts_releases_as_carried(tiny_policy):
    r = summarise(simulate(tiny_policy, TWO_CELLS, gpu_auto(900, state_carry_over=True), CONFIG))
    assert (r.dropped_kernels, r.carried_kernels) == (0, 1)


def test_the_first_code_cell_starts_the_gpu_kernel_and_cpu_cells_run_on_it(tiny_policy):
    """As the gateway (it cannot tell a cell needs no GPU), the first cell that runs code, a CPU cell here,
    starts a kernel of the session's %gpu size (its GPU cells': 1): admitted 0, ready 30, runs 30-130 (30 s
    late from now on). GPU cell 200 -> 230 on the warm kernel, runs 230-530. CPU cell at 600 -> 630 runs
    630-730 on it: held, not busy. Released at 730 + 900 = 1630."""
    trace = one_session(Cell(0, 100, 0), Cell(200, 300, 1), Cell(600, 100, 0))
    run = simulate(tiny_policy, trace, gpu_auto(900), CONFIG)
    r = summarise(run)
    assert (run.cells[0].wait_s, run.cells[0].flavor, run.cells[0].cold_start) == (30, "small", True)
    assert (run.cells[1].wait_s, run.cells[2].flavor) == (0, "small")
    assert [(a.start_s, a.end_s, a.gpus) for a in run.allocations] == [(0, 1630, 1)]
    assert r.gpu_h_held == pytest.approx(1630 / H)
    assert r.gpu_h_busy == pytest.approx(300 / H)
    assert r.idle_breakdown_gpu_h["cpu_cells"] == pytest.approx(200 / H)


def test_a_bigger_cell_releases_and_re_places(tiny_policy):
    """1-GPU cell 0-100 (runs 30-130), then a 2-GPU cell at 200 (230 after the delay): the 1-GPU kernel is
    released (state dropped) and 2 GPUs are admitted at 230, ready 260, run 260-360, released after
    900 / 2 = 450 s idle at 810."""
    trace = one_session(Cell(0, 100, 1), Cell(200, 100, 2))
    run = simulate(tiny_policy, trace, gpu_auto(900), CONFIG)
    assert [(a.gpus, a.start_s, a.end_s, a.dropped) for a in run.allocations] == [
        (1, 0, 230, True),
        (2, 230, 810, True),
    ]
    assert summarise(run).gpu_h_held == pytest.approx((230 + 2 * 580) / H)


def test_queued_cell_waits_for_freed_gpus_when_it_may_not_burst(tiny_policy):
    """A holds both private GPUs from 0 (cell 30-3630), closes at 4000+30 = 4030, releasing them. B (not
    burstable) asks at 60, queues, is admitted at 4030, runs from 4060: waited 4000 s."""
    a = Session("a", "alice", 0, 4000, (Cell(0, 3600, 2),))
    b = Session("b", "bob", 0, 9000, (Cell(60, 600, 2),))
    run = simulate(tiny_policy, Trace.of([a, b]), gpu_auto(900), CONFIG)
    cell_b = next(c for c in run.cells if c.session == "b")
    assert cell_b.first_output_s == 4060 and cell_b.wait_s == 4000
    r = summarise(run, slow_s=120)
    assert (r.bursts, r.public_spend_usd, r.slow_cells) == (0, 0.0, 1)


def test_burst_when_the_observed_private_wait_exceeds_the_threshold(tiny_policy):
    """B may burst. At 60 the private queue has admitted 1 workload in the last 30 min, so placement
    expects (0 pending + 1) / (1/1800 s) = 1800 s > 10 min and bursts at once: big, ready 150, runs
    150-750, released after 900 / 2 = 450 s idle at 1200. Spend: 2 GPUs x 1140 s x $2/h."""
    a = Session("a", "alice", 0, 4000, (Cell(0, 3600, 2),))
    b = Session("b", "bob", 0, 9000, (Cell(60, 600, 2),), burstable=True, budget="flex")
    run = simulate(tiny_policy, Trace.of([a, b]), gpu_auto(900), CONFIG)
    burst = [x for x in run.allocations if x.burst]
    assert [(x.flavor, x.start_s, x.end_s) for x in burst] == [("big", 60, 1200)]
    assert "Burst to cloud/big" in burst[0].summary
    r = summarise(run)
    assert r.bursts == 1
    assert r.public_spend_usd == pytest.approx(2 * 1140 / H * 2.0)
    assert r.flavors["big"].held_gpu_h == pytest.approx(2 * 1140 / H)


def test_re_ask_bursts_once_the_wait_passes_the_threshold(tiny_policy):
    """A was admitted at 0, more than 30 min before B asks (2000): no admission rate is observed, the
    low-confidence estimate never bursts by itself, so B queues. The re-ask at 2000+600+1 sees waited 601 s
    > 600 s and bursts: ready 2691, first output 691 s after submit."""
    a = Session("a", "alice", 0, 9000, (Cell(0, 7200, 2),))
    b = Session("b", "bob", 2000, 9000, (Cell(2000, 600, 2),), burstable=True, budget="flex")
    run = simulate(tiny_policy, Trace.of([a, b]), gpu_auto(900), CONFIG)
    cell_b = next(c for c in run.cells if c.session == "b")
    assert cell_b.first_output_s == pytest.approx(2691) and cell_b.flavor == "big"
    assert "waited 10 min > threshold 10 min" in next(x for x in run.allocations if x.burst).summary


def test_baselines_never_burst_even_for_burstable_sessions(tiny_policy):
    a = Session("a", "alice", 0, 4000, (Cell(0, 3600, 2),))
    b = Session("b", "bob", 0, 9000, (Cell(60, 600, 2),), burstable=True, budget="flex")
    for strategy in (SERVER_HELD, KERNEL_CULLED, PER_CELL):
        assert summarise(simulate(tiny_policy, Trace.of([a, b]), strategy, CONFIG)).bursts == 0


def test_a_user_waits_for_a_queued_cell_before_closing(tiny_policy):
    """Server-held: A's server holds both GPUs from 0; its cell waits for the spawn (runs 30-3630), so A
    closes 30 s late at 4030 and the GPUs linger until 4030 + 60 min = 7630. B's server queues until then
    (ready 7660); its cell, submitted at 60, runs 7660-7670 (waited 7600 s), so B closes at 120+7600 = 7720
    and its GPUs linger until 11320. Abandoning a queued notebook is not modelled."""
    a = Session("a", "alice", 0, 4000, (Cell(0, 3600, 2),))
    b = Session("b", "bob", 0, 120, (Cell(60, 10, 2),))
    run = simulate(tiny_policy, Trace.of([a, b]), SERVER_HELD, CONFIG)
    assert [(x.session, x.start_s, x.end_s) for x in run.allocations] == [("a", 0, 7630), ("b", 7630, 11320)]
    assert next(c for c in run.cells if c.session == "b").wait_s == 7600


def test_a_request_no_flavor_can_serve_is_rejected_and_the_session_goes_on(tiny_policy):
    """16 GPUs exceed max_gpus (8): placement rejects, the cell is counted as rejected, later cells run."""
    trace = one_session(Cell(0, 60, 16), Cell(100, 60, 0))
    run = simulate(tiny_policy, trace, gpu_auto(900), CONFIG)
    r = summarise(run)
    assert r.rejected_cells == 1 and r.gpu_h_held == 0
    assert run.cells[1].first_output_s == 100


def test_capacity_override_changes_the_pools(tiny_policy):
    a = Session("a", "alice", 0, 4000, (Cell(0, 3600, 2),))
    b = Session("b", "bob", 0, 9000, (Cell(60, 600, 2),))
    run = simulate(tiny_policy, Trace.of([a, b]), gpu_auto(900), SimConfig(capacity={"small": 4}))
    assert all(x.flavor == "small" for x in run.allocations)
    assert next(c for c in run.cells if c.session == "b").wait_s == 30
