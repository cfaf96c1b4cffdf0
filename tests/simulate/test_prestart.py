"""Pre-start in the simulator (issue 18), on hand-made traces with answers worked out in each docstring,
and the properties that must hold on generated weeks.

tiny-policy.yaml: private ``small`` has 2 GPUs (free), public ``big`` 8 ($2/GPU-hour); cold start 30 s;
gpu-auto's idle timeout 15 min (a 1-GPU kernel is released 900 s after its last cell); pre-start enabled
with a 2-minute hold (the policy's default). ``Cell.lead_s`` says when the user began working on a cell; a
cell's submit moves later by the delay the session accumulated (the first cell's 30 s cold start).
"""

from __future__ import annotations

import dataclasses

import pytest

from mlp_kernel.placement.prestart import Prestart
from mlp_kernel.placement.release import ReleaseRule
from mlp_kernel.simulate import Cell, Session, SimConfig, Trace, generate, gpu_auto, simulate, summarise
from mlp_kernel.simulate.lead import LEAD_CAP_S, SPURIOUS_SHARE, lead_s, spurious_at_s

LEAD = SimConfig(cold_start_private_s=30.0, cold_start_public_s=90.0, lead_scale=1.0)


def _cells(run, session: str):
    return [c for c in run.cells if c.session == session]


def test_a_pre_start_during_the_lead_hides_the_cold_start(tiny_policy):
    """Cell 0 waits its 30 s cold start (runs 30-90, so later cells come 30 s late); the kernel is released
    at 90 + 900 = 990. Cell 1 is submitted at 3030; the user began 120 s earlier, at 2910: the pre-start is
    admitted then, ready at 2940, and the cell runs at once. Held: 0-990 and 2910 to 3090 + 900."""
    trace = Trace.of([Session("a", "alice", 0.0, 7200.0, (Cell(0, 60, 1, 0.0), Cell(3000, 60, 1, 120.0)))])
    run = simulate(tiny_policy, trace, gpu_auto(900.0), LEAD)
    first, second = _cells(run, "a")
    assert first.wait_s == pytest.approx(30.0) and not first.prestarted
    assert second.wait_s == 0.0 and second.prestarted and not second.cold_start
    assert [(a.start_s, a.end_s, a.prestart) for a in run.allocations] == [
        (0.0, 990.0, False),
        (2910.0, 3990.0, True),
    ]
    r = summarise(run)
    assert (r.prestarts, r.prestarts_dropped, r.prestarted_cells) == (1, 0, 1)
    assert r.gpu_h_held == pytest.approx((990 + 1080) / 3600)


def test_without_a_lead_the_same_trace_pays_the_cold_start(tiny_policy):
    """The same trace with ``lead_scale = 0`` (the default): cell 1 restarts the kernel at its submit and
    waits 30 s, as before pre-start existed."""
    trace = Trace.of([Session("a", "alice", 0.0, 7200.0, (Cell(0, 60, 1, 0.0), Cell(3000, 60, 1, 120.0)))])
    run = simulate(tiny_policy, trace, gpu_auto(900.0), dataclasses.replace(LEAD, lead_scale=0.0))
    assert _cells(run, "a")[1].wait_s == pytest.approx(30.0)
    assert summarise(run).prestarts == 0


def test_a_kernel_released_while_the_user_types_is_pre_started_at_the_release(tiny_policy):
    """Cell 1 is submitted at 1030 and the user began at 830, while the kernel was still held (released at
    990): no pre-start then, but the release while the user types asks at 990; ready at 1020, before the
    cell."""
    trace = Trace.of([Session("a", "alice", 0.0, 7200.0, (Cell(0, 60, 1, 0.0), Cell(1000, 60, 1, 200.0)))])
    run = simulate(tiny_policy, trace, gpu_auto(900.0), LEAD)
    assert [a.start_s for a in run.allocations] == [0.0, 990.0]
    assert _cells(run, "a")[1].wait_s == 0.0


def test_an_unused_pre_start_is_dropped_after_the_hold_without_a_new_snapshot(tiny_policy):
    """State carried over: every new kernel restores the session's variables (``r`` seconds). The user
    begins 600 s before the cell's submit at 3030, at 2430: the pre-start is ready at 2460 + r, dropped at
    2580 + r (the 2-minute hold) without a snapshot. The user still types code, so the second chance goes at
    once: ready at 2610 + 2r, dropped at 2730 + 2r, and no third comes before a cell ran: the cell pays the
    cold start and restores the same state again."""
    trace = Trace.of([Session("a", "alice", 0.0, 7200.0, (Cell(0, 60, 1, 0.0), Cell(3000, 60, 1, 600.0)))])
    run = simulate(tiny_policy, trace, gpu_auto(900.0, state_carry_over=True), LEAD)
    r = LEAD.restore_s("a")
    dropped = run.allocations[1]
    assert (dropped.start_s, dropped.end_s) == pytest.approx((2430.0, 2580.0 + r))
    assert dropped.prestart_dropped and not dropped.carried and dropped.cells_run == 0
    cell = _cells(run, "a")[1]
    assert cell.wait_s == pytest.approx(30.0 + r) and cell.restore_s == pytest.approx(r)
    res = summarise(run)
    second = run.allocations[2]
    assert (second.start_s, second.end_s) == pytest.approx((2580.0 + r, 2730.0 + 2 * r))
    assert second.prestart_dropped and len(run.allocations) == 4
    assert (res.prestarts, res.prestarts_dropped) == (2, 2)
    assert res.prestart_dropped_gpu_h == pytest.approx((300.0 + 2 * r) / 3600)


def _busy_trace() -> Trace:
    """alice's kernel goes at 990; bob (from 10) and carol (from 1000) then hold both private GPUs until
    their long cells end; alice begins her second cell at 2910 (submit 3030)."""
    return Trace.of(
        [
            Session(
                "a", "alice", 0.0, 9000.0, (Cell(0, 60, 1, 0.0), Cell(3000, 60, 1, 120.0)), burstable=True
            ),
            Session("b", "bob", 10.0, 9000.0, (Cell(10, 5000, 1, 0.0),)),
            Session("c", "carol", 1000.0, 9000.0, (Cell(1000, 5000, 1, 0.0),)),
        ]
    )


def test_a_pre_start_does_not_queue_or_burst_by_default(tiny_policy):
    """At 2910 no private GPU is free: the pre-start is refused (it never pays, and does not queue), so
    alice's cell queues from its own submit at 3030 (she opted into bursting: it may burst per the rule)."""
    run = simulate(tiny_policy, _busy_trace(), gpu_auto(900.0), LEAD)
    assert summarise(run).prestarts == 0
    assert _cells(run, "a")[1].wait_s > 30.0
    first, second = [a for a in run.allocations if a.session == "a"]
    assert not first.queued and second.queued  # what a pre-start could not have hidden


def test_with_queue_on_a_pre_start_queues_privately_and_the_cell_takes_its_place(tiny_policy):
    """``queue: true``: the pre-start joins small's queue at 2910 (never the public flavor); the cell at
    3030 finds it queued and waits on it."""
    rule = ReleaseRule(prestart=Prestart(queue=True))
    run = simulate(tiny_policy, _busy_trace(), gpu_auto(900.0, release_rule=rule), LEAD)
    alice = [a for a in run.allocations if a.session == "a"]
    assert len(alice) == 2 and not alice[1].public
    assert alice[1].start_s >= 3030.0  # it waited in the queue that the pre-start joined at 2910
    assert _cells(run, "a")[1].wait_s > 30.0


def test_pre_start_off_in_the_policy_means_none(tiny_policy):
    trace = Trace.of([Session("a", "alice", 0.0, 7200.0, (Cell(0, 60, 1, 0.0), Cell(3000, 60, 1, 120.0)))])
    rule = ReleaseRule(prestart=Prestart(enabled=False))
    run = simulate(tiny_policy, trace, gpu_auto(900.0, release_rule=rule), LEAD)
    assert summarise(run).prestarts == 0 and _cells(run, "a")[1].wait_s == pytest.approx(30.0)


@pytest.fixture(scope="module")
def week() -> Trace:
    return generate(users=8, days=3, seed=11)


def test_lead_zero_replays_exactly_as_without_pre_start(platform_policy, week):
    """The sensitivity's first column: with no lead, every figure equals the replay with pre-start off."""
    off = ReleaseRule(kind="predictive", prestart=Prestart(enabled=False))
    on = ReleaseRule(kind="predictive")
    base = summarise(simulate(platform_policy, week, gpu_auto(900.0, True, off), SimConfig(lead_scale=1.0)))
    zero = summarise(simulate(platform_policy, week, gpu_auto(900.0, True, on), SimConfig(lead_scale=0.0)))
    assert zero == base
    assert zero == summarise(simulate(platform_policy, week, gpu_auto(900.0, True, on)))  # the default


def test_on_a_generated_week_pre_start_never_pays_and_happens_once_per_cell_that_ran(platform_policy, week):
    run = simulate(platform_policy, week, gpu_auto(900.0, True), SimConfig(lead_scale=1.0))
    pre = [a for a in run.allocations if a.prestart]
    assert pre and any(a.prestart_dropped for a in pre)
    assert not any(a.public or a.price_per_gpu_hour > 0 for a in pre)
    # between two cells of a session at most two pre-starts, the second only after the first was dropped
    # unused: group them by (session, cells submitted before)
    submits = {}
    for c in run.cells:
        submits.setdefault(c.session, []).append(c.submit_s)
    per_gap: dict[tuple[str, int], list] = {}
    for a in pre:
        per_gap.setdefault((a.session, sum(s <= a.start_s for s in submits[a.session])), []).append(a)
    assert max(len(v) for v in per_gap.values()) <= 2
    seconds = [v for v in per_gap.values() if len(v) == 2]
    assert seconds and all(v[0].prestart_dropped for v in seconds)
    r = summarise(run)
    assert r.prestarts == len(pre) and r.prestarted_cells == sum(c.prestarted for c in run.cells) > 0
    held_pre = sum(a.gpus * (a.end_s - a.start_s) for a in pre if a.prestart_dropped) / 3600
    assert r.prestart_dropped_gpu_h == pytest.approx(held_pre) and held_pre > 0


def test_the_lead_model_is_a_capped_fraction_of_the_gap_and_scales():
    """Uniform share of the gap in [0, 0.5] (mean a quarter), capped at 2 min; half the scale halves both;
    scale 0 or an empty gap gives none. A quarter of gaps get one activity that is not followed by a run."""
    leads = [lead_s(f"s{i}", i % 7, 240.0) for i in range(4000)]
    assert all(0.0 <= x <= 120.0 for x in leads)
    assert sum(leads) / len(leads) == pytest.approx(60.0, rel=0.05)  # 240 s x 0.25 on average
    assert max(lead_s(f"s{i}", 0, 86400.0) for i in range(200)) == LEAD_CAP_S
    assert lead_s("s1", 3, 240.0, 0.5) == pytest.approx(lead_s("s1", 3, 240.0) / 2)
    assert lead_s("s1", 3, 240.0, 0.0) == 0.0 and lead_s("s1", 3, 0.0) == 0.0
    spurious = [spurious_at_s(f"s{i}", 1, 600.0, 60.0) for i in range(4000)]
    share = sum(x is not None for x in spurious) / len(spurious)
    assert share == pytest.approx(SPURIOUS_SHARE, abs=0.03)
    assert all(0.0 <= x < 540.0 for x in spurious if x is not None)
    assert spurious_at_s("s1", 1, 600.0, 60.0, 0.0) is None


def test_the_sweep_curves_come_with_and_without_a_lead(platform_policy, week):
    """``--idle-sweep --plots`` draws each rule with no lead (the figures without pre-start) and with the
    lead: the no-lead curve equals the sweep with pre-start off, and the lead curve has pre-starts."""
    from mlp_kernel.simulate import idle_sweep, trade_off_curves

    curves = trade_off_curves(platform_policy, week, [0.0, 900.0], pool_sizes=(0,), rules=("gpu-minutes",))
    assert [(c.rule, c.pool, c.lead) for c in curves] == [("gpu-minutes", 0, 0.0), ("gpu-minutes", 0, 1.0)]
    assert [c.label for c in curves] == [
        "gpu-minutes, pool 0, no lead",
        "gpu-minutes, pool 0, pre-start (lead x1)",
    ]
    off = ReleaseRule(prestart=Prestart(enabled=False))
    pool0 = SimConfig(warm_pool={n: 0 for n in platform_policy.flavors})
    assert curves[0].points == idle_sweep(platform_policy, week, [0.0, 900.0], pool0, 120.0, True, off)
    assert all(r.prestarts > 0 for r in curves[1].points)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_trace_file_carries_the_lead_of_a_cell(tmp_path, suffix):
    """The optional ``lead`` field round-trips through both formats; a cell without one reads as None (the
    lead assumption applies), and a bad or negative lead names the line and field."""
    from mlp_kernel.simulate import TraceError, read_trace, write_trace

    trace = Trace.of([Session("a", "alice", 0.0, 7200.0, (Cell(0, 60, 1, 30.0), Cell(3000, 60, 1)))])
    path = tmp_path / f"t{suffix}"
    write_trace(trace, path)
    assert [c.lead_s for c in read_trace(path).sessions[0].cells] == [30.0, None]
    bad = tmp_path / "bad.jsonl"
    for value, message in (('"soon"', "field 'lead'"), ("-5", "field 'lead'")):
        bad.write_text(
            '{"event": "open", "session": "a", "t": 0}\n'
            f'{{"event": "cell", "session": "a", "t": 10, "duration": 5, "lead": {value}}}\n'
        )
        with pytest.raises(TraceError, match=f"bad.jsonl:2: {message}"):
            read_trace(bad)


def test_the_first_code_cell_pre_starts_the_notebooks_first_kernel(tiny_policy):
    """``release.prestart.first`` (default on): the session opens at 0 and never had a GPU kernel
    (``cpu_only``); the user begins typing its first code cell at 40 (lead 60 s before the submit at 100):
    the kernel of that cell's size starts then, is ready at 70, and the cell runs at once."""
    trace = Trace.of([Session("a", "alice", 0.0, 7200.0, (Cell(100, 60, 1, 60.0),))])
    run = simulate(tiny_policy, trace, gpu_auto(900.0), LEAD)
    [cell] = _cells(run, "a")
    assert cell.wait_s == 0.0 and cell.prestarted and not cell.cold_start
    [alloc] = run.allocations
    assert (alloc.start_s, alloc.gpus, alloc.prestart, alloc.queued) == (40.0, 1, True, False)


def test_with_first_off_the_first_code_cell_pays_its_cold_start(tiny_policy):
    """``release.prestart.first: false``: the gateway refuses a pre-start in ``cpu_only``, so does the
    engine: the same cell waits the whole 30 s cold start, and nothing starts before its submit."""
    trace = Trace.of([Session("a", "alice", 0.0, 7200.0, (Cell(100, 60, 1, 60.0),))])
    rule = ReleaseRule(prestart=Prestart(first=False))
    run = simulate(tiny_policy, trace, gpu_auto(900.0, release_rule=rule), LEAD)
    assert _cells(run, "a")[0].wait_s == pytest.approx(30.0)
    assert [(a.start_s, a.prestart) for a in run.allocations] == [(100.0, False)]


def test_a_first_kernel_pre_start_never_pays_either(tiny_policy):
    """bob and carol hold both private GPUs from 10 and 20 until past 5000; alice opens at 100 and starts
    typing her first code cell at 2910 (lead 120 s, submit 3030). Her first kernel would have to queue or go
    to the public flavor: no pre-start; the cell pays its own wait from its submit."""
    trace = Trace.of(
        [
            Session("a", "alice", 100.0, 9000.0, (Cell(3030, 60, 1, 120.0),), burstable=True),
            Session("b", "bob", 10.0, 9000.0, (Cell(10, 5000, 1, 0.0),)),
            Session("c", "carol", 20.0, 9000.0, (Cell(20, 5000, 1, 0.0),)),
        ]
    )
    run = simulate(tiny_policy, trace, gpu_auto(900.0), LEAD)
    assert summarise(run).prestarts == 0
    [cell] = _cells(run, "a")
    assert not cell.prestarted and cell.wait_s > 30.0
