"""``mlp-kernel simulate`` end to end: a subprocess, a real trace file, real PNGs, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mlp_kernel.simulate import Cell, Session, Trace, write_trace

from .conftest import HERE, REPO


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlp_kernel.cli", "simulate", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def two_cells(tmp_path):
    path = tmp_path / "two.jsonl"
    write_trace(Trace.of([Session("s", "alice", 0, 7200, (Cell(600, 600, 1), Cell(1500, 300, 1)))]), path)
    return path


def test_json_report_for_a_hand_made_trace(two_cells):
    """Same trace as the engine tests: gpu-auto held 2130 s, server-held 10800 s, busy 900 s (``--lead 0``:
    the user starts each cell when submitting it, so pre-start never fires early; tests/simulate/
    test_prestart.py has the figures with a lead)."""
    out = cli(
        "--policy",
        str(HERE / "tiny-policy.yaml"),
        "--trace",
        str(two_cells),
        "--lead",
        "0",
        "--json",
        "--idle-sweep",
        "0,15",
        "--budget",
        "100",
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    by_name = {r["strategy"]: r for r in report["strategies"]}
    assert list(by_name) == ["server-held", "kernel-culled", "per-cell", "gpu-auto"]
    assert by_name["gpu-auto"]["gpu_h_held"] == pytest.approx(2130 / 3600)
    assert by_name["server-held"]["gpu_h_held"] == pytest.approx(10800 / 3600)
    assert by_name["gpu-auto"]["gpu_h_busy"] == pytest.approx(900 / 3600)
    assert [s["idle_timeout_s"] for s in report["sweep"]] == [0, 900]
    assert report["sweep"][0]["cold_start_share"] == 1.0
    assert report["budget_usd"] == 100 and report["over_budget"] == []


def test_table_plots_and_generated_trace(tmp_path):
    out = cli(
        "--generate",
        "users=4,days=1,seed=3",
        "--idle-sweep",
        "0,5,15",
        "--plots",
        str(tmp_path),
        "--write-trace",
        str(tmp_path / "gen.csv"),
    )
    assert out.returncode == 0, out.stderr
    assert "held / busy" in out.stdout and "gpu-auto" in out.stdout and "idle timeout" in out.stdout
    for name in ("simulator-held-vs-busy.png", "simulator-idle-sweep.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "gen.csv").read_text().startswith("event,session,user,t,")


def test_one_strategy_and_overrides(two_cells):
    out = cli(
        "--policy",
        str(HERE / "tiny-policy.yaml"),
        "--trace",
        str(two_cells),
        "--json",
        "--strategy",
        "gpu-auto",
        "--idle-timeout",
        "0",
        "--cold-start-private",
        "1m",
        "--capacity",
        "small=1",
        "--lead",
        "0",  # the overrides' figures, without pre-start (test_prestart.py has those)
    )
    assert out.returncode == 0, out.stderr
    (r,) = json.loads(out.stdout)["strategies"]
    assert r["strategy"] == "gpu-auto" and r["cold_start_cells"] == 2 and r["wait_p50_s"] == 60
    assert r["flavors"]["small"]["capacity_gpus"] == 1


def test_the_foresight_reference_by_name(two_cells):
    """``--strategy foresight``: the kernel starts 31 s before each cell (cold start 30 s and a second),
    at 569 and 1469, and goes back as each cell ends (1200, 1800): held 631 + 331 s, no cell waits."""
    out = cli(
        "--policy", str(HERE / "tiny-policy.yaml"), "--trace", str(two_cells), "--json", "--strategy",
        "gpu-auto,foresight",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    auto, bound = json.loads(out.stdout)["strategies"]
    assert bound["strategy"] == "foresight" and bound["release_rule"] == "knows the next submit"
    assert bound["gpu_h_held"] == pytest.approx(962 / 3600) and bound["wait_p95_s"] == 0
    assert auto["gpu_h_held"] > bound["gpu_h_held"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trace", "missing.jsonl"], "cannot read trace file"),
        (["--strategy", "gpu-always"], "unknown strategy 'gpu-always'"),
        (["--generate", "people=3"], "--generate: expected KEY=VALUE"),
        (["--capacity", "platinum=4"], "--capacity: expected FLAVOR=GPUS"),
        (["--idle-timeout", "soon"], "invalid duration 'soon'"),
        (["--policy", "nope.yaml"], "cannot read policy file"),
        (["--lead", "-1"], "--lead: must be from 0 to 100, got -1"),
        (["--lead", "soon"], "--lead: expected a number, got 'soon'"),
    ],
)
def test_bad_input_exits_2_with_a_message(args, message):
    out = cli(*args)
    assert out.returncode == 2
    assert message in out.stderr
