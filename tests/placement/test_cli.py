"""``mlp-kernel place`` as an admin runs it: real process, real files, exit codes and output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from .conftest import KERNELSPEC, ROOT, dump

PLATFORM = os.path.join(KERNELSPEC, "platform-policy.yaml")
DEMO = os.path.join(KERNELSPEC, "demo-policy.yaml")
NOW = "2026-11-28T12:00:00Z"


def place(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlp_kernel.cli", "place", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def place_json(*args: str) -> dict[str, Any]:
    proc = place(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


STATE = (
    "--state",
    f"private={dump('private-v1beta2.yaml')}",
    "--state",
    f"aws={dump('aws.yaml')}",
    "--state",
    f"aws={dump('karmada-clusters.yaml')}",
)


def test_json_has_the_decision_fields_and_explanation() -> None:
    out = place_json(
        "--policy", PLATFORM, *STATE, "--gpu", "rtx", "--burstable", "--budget", "flex", "--now", NOW
    )
    assert out["action"] == "queue" and out["member"] == "private" and out["flavor"] == "bronze"
    assert out["local_queue"] == "kernels" and out["expected_wait_s"] == pytest.approx(3000)
    assert out["price_per_hour"] == 0
    assert [r["rule"] for r in out["explanation"]] == [
        "candidates",
        "member_health",
        "private_first",
        "expected_wait",
        "burst",
        "gpu_model",
    ]
    assert all(set(r) == {"rule", "inputs", "result", "detail"} for r in out["explanation"])


def test_waited_flag_turns_a_queue_into_a_burst() -> None:
    out = place_json(
        "--policy",
        PLATFORM,
        *STATE,
        "--count",
        "3",
        "--burstable",
        "--budget",
        "flex",
        "--waited",
        "12m",
        "--now",
        NOW,
    )
    assert (out["action"], out["member"], out["flavor"]) == ("burst", "aws", "gold")
    assert out["price_per_hour"] == pytest.approx(12.3)


def test_deadline_flag_accepts_relative_times() -> None:
    out = place_json(
        "--policy",
        PLATFORM,
        *STATE,
        "--count",
        "3",
        "--burstable",
        "--budget",
        "flex",
        "--waited",
        "4m",
        "--deadline",
        "+20m",
        "--now",
        NOW,
    )
    assert out["action"] == "burst"
    burst = out["explanation"][-2]
    assert burst["rule"] == "burst" and burst["inputs"]["threshold_eff_s"] == pytest.approx(100)


def test_human_output_shows_decision_summary_and_rules() -> None:
    proc = place("--policy", DEMO, "--gpu", "h100", "--now", NOW)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Decision: reject\n")
    assert "Run %gpu burst=on budget=flex to allow AWS gold at $4.10/h." in proc.stdout
    assert "4. public_only: reject" in proc.stdout and "inputs: {" in proc.stdout


def test_without_state_members_are_declared_capacity_and_the_output_says_so() -> None:
    proc = place("--policy", DEMO, "--tier", "silver", "--now", NOW)
    assert proc.returncode == 0 and "Decision: run" in proc.stdout
    assert "declared capacity (no live state; all free)" in proc.stdout


def test_sensitive_data_never_bursts_from_the_cli() -> None:
    out = place_json(
        "--policy",
        DEMO,
        "--gpu",
        "a100",
        "--burstable",
        "--budget",
        "flex",
        "--data-class",
        "sensitive",
        "--now",
        NOW,
    )
    assert out["action"] == "reject" and "must stay private" in out["summary"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--gpu", "b200"), "unknown GPU model 'b200'"),
        (("--gpu", "a100:x"), "GPU count must be a whole number"),
        (("--gpu", "a100:0"), "at least 1"),
        (("--gpu", "a100:9"), "at most 8"),
        (("--tier", "platinum"), "unknown tier"),
        (("--waited", "a while"), "--waited: invalid duration"),
        (("--deadline", "tomorrow"), "not an ISO 8601 time"),
        (("--now", "noon"), "--now"),
        (("--data-class", "secret"), "unknown data class"),
        (("--state", "private"), "expected MEMBER=FILE"),
        (("--state", "gcp=x.yaml"), "cannot read state file x.yaml"),
        (("--state", "private=/nonexistent.yaml"), "cannot read state file /nonexistent.yaml"),
    ],
)
def test_bad_flags_exit_2_with_a_clear_message(args: tuple[str, ...], message: str) -> None:
    proc = place("--policy", DEMO, *args)
    assert proc.returncode == 2, proc.stdout
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_gpu_and_tier_are_mutually_exclusive() -> None:
    proc = place("--policy", DEMO, "--gpu", "a100", "--tier", "gold")
    assert proc.returncode == 2 and "not allowed with argument" in proc.stderr


def test_invalid_policy_exits_2_listing_every_error(tmp_path: Any) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text(
        "members:\n  m: {backend: local}\nflavors:\n  f: {member: m, tier: t, gpu_models: [X],"
        " price_per_gpu_hour: lots}\nidle_timeout: never\n"
    )
    proc = place("--policy", str(bad))
    assert proc.returncode == 2
    assert "flavors.f.price_per_gpu_hour: expected a number, got a string ('lots') (line 4)" in proc.stderr
    assert "idle_timeout: expected a duration" in proc.stderr and "(line 5)" in proc.stderr


def test_state_for_an_unknown_member_exits_2(tmp_path: Any) -> None:
    proc = place("--policy", PLATFORM, "--state", f"gcp={dump('aws.yaml')}")
    assert proc.returncode == 2 and "unknown member(s) gcp" in proc.stderr


def test_cpu_and_memory_flags_are_validated() -> None:
    proc = place("--policy", DEMO, "--cpu", "lots")
    assert proc.returncode == 2 and "--cpu lots: expected a Kubernetes quantity" in proc.stderr
    assert place("--policy", DEMO, "--cpu", "500m", "--memory", "16Gi", "--json").returncode == 0
