"""The release rule in the engine, on tiny traces with hand-computed answers, and through the CLI.

Policy (tiny-policy.yaml, no ``release:`` section, so the default ``gpu-minutes`` rule with a 3 min floor):
private flavor ``small`` with 2 GPUs. Cold start 30 s. A 2-GPU kernel with a 15 min (900 s) idle timeout is
released after max(180, 900 / 2) = 450 s idle; a 1-GPU kernel after 900 s.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mlp_kernel.placement import parse_policy
from mlp_kernel.placement.release import FLAT, ReleaseRule
from mlp_kernel.simulate import Cell, Session, SimConfig, Trace, gpu_auto, idle_sweep, simulate, summarise
from mlp_kernel.simulate.strategies import KERNEL_CULLED

from .conftest import HERE, REPO

H = 3600.0
CONFIG = SimConfig(cold_start_private_s=30.0, cold_start_public_s=90.0)

# One 2-GPU session open 0-7200: cell 0 at 0 for 600 s, cell 1 at 1200 for 300 s (a 600 s gap).
TWO_GPU = Trace.of([Session("s", "alice", 0.0, 7200.0, (Cell(0, 600, 2), Cell(1200, 300, 2)))])
# The same shape with one GPU.
ONE_GPU = Trace.of([Session("s", "alice", 0.0, 7200.0, (Cell(0, 600, 1), Cell(1200, 300, 1)))])


def test_two_gpu_kernel_is_released_after_half_the_idle_timeout(tiny_policy):
    """Admitted 0, ready 30, c0 runs 30-630; idle from 630, released at 630 + 450 = 1080 (session open:
    dropped). c1 is submitted at 1200 + 30 = 1230: cold start, admitted 1230, ready 1260, runs 1260-1560,
    released 1560 + 450 = 2010. Held 2 x (1080 + 780) s; two cold starts."""
    run = simulate(tiny_policy, TWO_GPU, gpu_auto(900), CONFIG)
    r = summarise(run)
    assert [(a.start_s, a.end_s, a.dropped) for a in run.allocations] == [(0, 1080, True), (1230, 2010, True)]
    assert [(c.submit_s, c.first_output_s, c.cold_start) for c in run.cells] == [
        (0, 30, True),
        (1230, 1260, True),
    ]
    assert r.gpu_h_held == pytest.approx(2 * (1080 + 780) / H)
    assert (r.cold_start_cells, r.dropped_kernels) == (2, 2)
    assert run.release_rule == ReleaseRule() and r.release_rule == "15 min / GPUs, >= 3 min"


def test_one_gpu_kernel_keeps_the_whole_idle_timeout(tiny_policy):
    """c0 runs 30-630; the 570 s gap (c1 at 1230) is shorter than 900 s: warm, c1 runs 1230-1530; released
    1530 + 900 = 2430. Held 2430 s, one cold start."""
    run = simulate(tiny_policy, ONE_GPU, gpu_auto(900), CONFIG)
    assert [(a.start_s, a.end_s) for a in run.allocations] == [(0, 2430)]
    assert summarise(run).cold_start_cells == 1


def test_the_floor_keeps_a_big_kernel_through_a_short_pause(tiny_policy):
    """Idle timeout 5 min: 300 / 2 = 150 s is under the 180 s floor, so the 2-GPU kernel waits 180 s:
    c0 ends 630, released 810."""
    trace = Trace.of([Session("s", "alice", 0.0, 7200.0, (Cell(0, 600, 2),))])
    run = simulate(tiny_policy, trace, gpu_auto(300), CONFIG)
    assert [a.end_s for a in run.allocations] == [810]


def test_the_floor_never_lengthens_a_short_idle_timeout(tiny_policy):
    """Idle timeout 2 min, below the 3 min floor: every kernel gets 120 s. c0 ends 630, released 750."""
    trace = Trace.of([Session("s", "alice", 0.0, 7200.0, (Cell(0, 600, 2),))])
    run = simulate(tiny_policy, trace, gpu_auto(120), CONFIG)
    assert [a.end_s for a in run.allocations] == [750]


def test_flat_rule_holds_every_size_for_the_idle_timeout(tiny_policy):
    """Flat 900 s: the 570 s gap is covered; released 1530 + 900 = 2430, one allocation, one cold start."""
    run = simulate(tiny_policy, TWO_GPU, gpu_auto(900, release_rule=FLAT), CONFIG)
    assert [(a.start_s, a.end_s) for a in run.allocations] == [(0, 2430)]
    assert summarise(run).release_rule == "after 15 min idle"


def test_the_simulator_applies_the_policy_s_rule(tiny_policy):
    """gpu_auto() without a rule takes the policy's: with ``release: {rule: flat}`` the 2-GPU kernel of the
    first test is held 900 s (2430, as flat); with an 11 min floor it is held max(660, 450) = 660 s: c1 at
    1230 finds it warm and it is released at 1530 + 660 = 2190."""
    text = (HERE / "tiny-policy.yaml").read_text()
    flat = parse_policy(text + "release: {rule: flat}\n")
    floored = parse_policy(text + "release: {rule: gpu-minutes, min_idle: 11m}\n")
    assert [a.end_s for a in simulate(flat, TWO_GPU, gpu_auto(900), CONFIG).allocations] == [2430]
    assert [a.end_s for a in simulate(floored, TWO_GPU, gpu_auto(900), CONFIG).allocations] == [2190]


def test_baselines_stay_flat_whatever_the_policy_says(tiny_policy):
    """kernel-culled culls after 60 min without execution regardless of GPU count (a conventional culler):
    the pod starts at open (0, ready 30), so c0 waits for it and runs 30-630, c1 runs 1230-1530 on the
    warm kernel, culled 1530 + 3600 = 5130."""
    run = simulate(tiny_policy, TWO_GPU, KERNEL_CULLED, CONFIG)
    assert [a.end_s for a in run.allocations] == [5130]


def test_the_sweep_sweeps_the_base_timeout_under_the_policy_s_rule(tiny_policy):
    """At 900 s the 2-GPU kernel gets 450 s (first test: held 2 x 1860 s); at 1800 s it gets 900 s, which
    covers the gap: held 2 x (1530 + 900) s."""
    sweep = idle_sweep(tiny_policy, TWO_GPU, [900, 1800], CONFIG)
    assert [r.idle_timeout_s for r in sweep] == [900, 1800]
    assert [r.gpu_h_held for r in sweep] == pytest.approx([2 * 1860 / H, 2 * 2430 / H])


def test_cli_honours_the_policy_s_release_rule(tmp_path):
    """The same trace through ``mlp-kernel simulate`` with the tiny policy (gpu-minutes) and with a flat copy
    of it: 2 x 1860 s against 2 x 2430 s held (``--lead 0``: no pre-start before a cell's submit)."""
    from mlp_kernel.simulate import write_trace

    trace = tmp_path / "two-gpu.jsonl"
    write_trace(TWO_GPU, trace)
    flat_policy = tmp_path / "flat.yaml"
    flat_policy.write_text((HERE / "tiny-policy.yaml").read_text() + "release: {rule: flat}\n")
    held = {}
    for name, policy in (("gpu-minutes", HERE / "tiny-policy.yaml"), ("flat", flat_policy)):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "mlp_kernel.cli",
                "simulate",
                "--policy",
                str(policy),
                "--trace",
                str(trace),
                "--strategy",
                "gpu-auto",
                "--lead",
                "0",
                "--json",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        held[name] = json.loads(out.stdout)["strategies"][0]["gpu_h_held"]
    assert held == pytest.approx({"gpu-minutes": 2 * 1860 / H, "flat": 2 * 2430 / H})
