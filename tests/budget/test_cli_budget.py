"""``mlp-kernel budget`` as an admin runs it: a real process reading a file ledger as gateways write it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mlp_kernel.backends.ledger import FileLedger
from mlp_kernel.placement.budget import to_micro

ROOT = Path(__file__).resolve().parents[2]
POLICY = (
    (ROOT / "kernelspecs" / "gpu-auto" / "demo-policy.yaml").read_text()
    + """
budgets: {team_monthly: 500, team_soft: 400, user_monthly: 150}
"""
)


def budget(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlp_kernel.cli", "budget", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_spent_left_and_top_spenders(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    ledger = FileLedger(tmp_path / "ledger")
    for user, usd in (("ada", 300.0), ("bob", 100.5), ("cy", 11.5), ("dee", 0.25)):
        ledger.record_sync("ml-vision", "2026-12", user, f"{user}-k1", to_micro(usd))
    ledger.record_sync("nlp", "2026-12", "eve", "eve-k1", to_micro(999))  # another team: not counted
    common = (
        "--policy",
        str(tmp_path / "policy.yaml"),
        "--team",
        "ml-vision",
        "--ledger-dir",
        str(tmp_path / "ledger"),
    )
    proc = budget(*common, "--month", "2026-12", "--top", "3")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "Team ml-vision: $412.25 of $500 this month (soft limit $400 passed) [2026-12, UTC]"
    assert lines[1] == "Left: $87.75"
    assert lines[2] == "Top spenders (3 of 4):"
    assert lines[3].split() == ["ada", "$300", "(user", "limit", "$150", "reached:", "no", "new", "bursts)"]
    assert lines[4].split() == ["bob", "$100.50", "(of", "$150)"] and lines[5].split()[:2] == ["cy", "$11.50"]

    r = json.loads(budget(*common, "--month", "2026-12", "--json").stdout)
    assert r["spent_usd"] == 412.25 and r["left_usd"] == 87.75 and r["users"] == 4
    assert [(s["user"], s["spent_usd"], s["budget"]["over_hard"]) for s in r["top_spenders"]] == [
        ("ada", 300.0, True), ("bob", 100.5, False), ("cy", 11.5, False), ("dee", 0.25, False)
    ]  # fmt: skip

    empty = json.loads(budget(*common, "--month", "2027-01", "--json").stdout)
    assert empty["spent_usd"] == 0 and empty["top_spenders"] == []


def test_bad_input_exits_2(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    proc = budget("--policy", str(tmp_path / "policy.yaml"), "--team", "t", "--month", "2026-13")
    assert proc.returncode == 2 and "--month must be YYYY-MM" in proc.stderr
    proc = budget("--policy", str(tmp_path / "missing.yaml"), "--team", "t")
    assert proc.returncode == 2 and "missing.yaml" in proc.stderr
