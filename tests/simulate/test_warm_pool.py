"""The simulator's warm pool (issue 18 §3) on hand-made traces, answers worked out in each docstring.

tiny-policy.yaml: private ``small`` has 2 GPUs; cold start 30 s, a claim 1 s; the pool is one 1-GPU kernel
on ``small`` (``SimConfig.warm_pool``), released after 15 min unclaimed (``warm_pool_idle`` default);
gpu-auto's idle timeout 15 min (a 1-GPU kernel is released 900 s after its last cell).
"""

from __future__ import annotations

import pytest

from mlp_kernel.simulate import KERNEL_CULLED, Cell, Session, SimConfig, Trace, gpu_auto, simulate, summarise

POOL = SimConfig(cold_start_private_s=30.0, cold_start_public_s=90.0, warm_pool={"small": 1}, claim_s=1.0)


def _wait(run, session: str) -> float:
    return next(c.wait_s for c in run.cells if c.session == session)


def test_a_cold_start_claims_a_ready_pool_kernel_and_the_pool_counts_as_held(tiny_policy):
    """alice's cell at 0 misses the empty pool: a 30 s cold start, and the pool is now wanted: one kernel
    starts at 0 on the free GPU, ready at 30. bob's cell at 100 claims it: he waits the claim, 1 s. No GPU
    is free for a refill until alice's kernel goes at 90 + 900 = 990: the refill starts then, is ready at
    1020 and nobody claims it, so it is given back at 1020 + 900 = 1920. Pool GPU-hours: 0-100 and 990-1920
    = 1030 s; held also counts alice 0-990 and bob 100-1061 (his cell 101-161, + 900)."""
    trace = Trace.of(
        [
            Session("a", "alice", 0.0, 7200.0, (Cell(0, 60, 1),)),
            Session("b", "bob", 100.0, 7200.0, (Cell(100, 60, 1),)),
        ]
    )
    run = simulate(tiny_policy, trace, gpu_auto(900.0), POOL)
    r = summarise(run)
    assert _wait(run, "a") == pytest.approx(30.0)
    assert _wait(run, "b") == pytest.approx(1.0)
    assert r.claimed_cells == 1
    pool = [(a.start_s, a.end_s) for a in run.allocations if a.pool]
    assert pool == [(0.0, 100.0), (990.0, 1920.0)]
    assert r.idle_breakdown_gpu_h["warm_pool"] == pytest.approx(1030 / 3600)
    assert r.gpu_h_held == pytest.approx((1030 + 990 + 961) / 3600)


def test_the_pool_never_makes_a_user_queue(tiny_policy):
    """alice closes at 200 (her kernel goes), leaving the pool kernel (ready at 30) on one of the two GPUs.
    bob's 2-GPU cell at 300 cannot claim it (the pool's kernels have 1 GPU) but placement counts its GPU as
    free: he is admitted at once, the pool kernel is ended to make room, and he waits a cold start, 30 s.
    The pool is still wanted (alice missed it): it refills once bob's 2-GPU kernel goes, at 390 + 900 / 2 =
    840, and is given back unclaimed at 870 + 900 = 1770."""
    trace = Trace.of(
        [
            Session("a", "alice", 0.0, 200.0, (Cell(0, 60, 1),)),
            Session("b", "bob", 300.0, 7200.0, (Cell(300, 60, 2),)),
        ]
    )
    run = simulate(tiny_policy, trace, gpu_auto(900.0), POOL)
    assert _wait(run, "b") == pytest.approx(30.0)
    assert [(a.start_s, a.end_s) for a in run.allocations if a.pool] == [(0.0, 300.0), (840.0, 1770.0)]
    assert summarise(run).claimed_cells == 0


def test_baselines_have_no_pool_and_size_zero_is_no_pool(tiny_policy):
    """Conventional deployments have no warm pool; gpu-auto with a pool of 0 replays exactly as without."""
    trace = Trace.of([Session("a", "alice", 0.0, 7200.0, (Cell(0, 60, 1), Cell(3000, 60, 1)))])
    assert not any(a.pool for a in simulate(tiny_policy, trace, KERNEL_CULLED, POOL).allocations)
    none = SimConfig(cold_start_private_s=30.0, cold_start_public_s=90.0)
    zero = SimConfig(cold_start_private_s=30.0, cold_start_public_s=90.0, warm_pool={"small": 0})
    assert summarise(simulate(tiny_policy, trace, gpu_auto(900.0), zero)) == summarise(
        simulate(tiny_policy, trace, gpu_auto(900.0), none)
    )


def test_cli_warm_pool_flag_reports_claims_and_refuses_bad_sizes(tmp_path):
    """``--warm-pool small=1`` on the first test's trace: bob claims the pool kernel (one claim, 1030 s of
    pool GPU-time); a fractional size and an unknown flavor exit 2 with a one-line message."""
    from mlp_kernel.simulate import write_trace

    from .conftest import HERE
    from .test_cli import cli

    path = tmp_path / "t.jsonl"
    write_trace(
        Trace.of(
            [
                Session("a", "alice", 0.0, 7200.0, (Cell(0, 60, 1),)),
                Session("b", "bob", 100.0, 7200.0, (Cell(100, 60, 1),)),
            ]
        ),
        path,
    )
    args = ("--policy", str(HERE / "tiny-policy.yaml"), "--trace", str(path), "--strategy", "gpu-auto")
    out = cli(*args, "--warm-pool", "small=1", "--json", "--cold-start-private", "30s")
    assert out.returncode == 0, out.stderr
    import json

    (r,) = json.loads(out.stdout)["strategies"]
    assert r["claimed_cells"] == 1
    assert r["idle_breakdown_gpu_h"]["warm_pool"] == pytest.approx(1030 / 3600)
    for bad, said in (("small=1.5", "whole number"), ("huge=1", "FLAVOR one of")):
        out = cli(*args, "--warm-pool", bad)
        assert out.returncode == 2 and said in out.stderr, out.stderr
