"""The audit log's Prometheus counters on a real jupyter_server's ``/metrics``, by event and team.

Records are appended to the audit file by other processes (as gateways do) and by this one (as the admin
page does) after the server started; each scrape counts what was appended since the last one. A line still
being written is counted once it ends, and records from before the server started are not counted.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlp_kernel import audit

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_LIKE = """
import sys
from mlp_kernel import audit
for team in sys.argv[1:]:
    audit.record("public_placement", user="ada", team=team, why="waited 10m > threshold 10m", member="aws")
"""


@pytest.fixture
def audit_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit" / "audit.jsonl"
    monkeypatch.setenv(audit.AUDIT_ENV, str(path))
    audit.record("budget_refusal", user="old", team="ml-vision", why="before the server started")
    return path


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], audit_file: Path) -> dict[str, Any]:
    return jp_server_config  # the audit file is configured (and has an old record) before the server starts


def counter(text: str, event: str, team: str) -> float:
    m = re.search(rf'^mlp_kernel_audit_events_total{{event="{event}",team="{team}"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def test_counters_follow_the_audit_file(api: Any, audit_file: Path) -> None:
    status, text = api("GET", "/metrics")
    assert status == 200 and counter(text, "budget_refusal", "ml-vision") == 0  # the old record is history

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", GATEWAY_LIKE, "ml-vision", "ml-vision", "nlp"]
    subprocess.run(cmd, env=env, check=True, timeout=60)
    audit.record(
        "admin_change", user="alice", team="platform", why="raise the burst threshold", file="policy"
    )
    audit.record("budget_refusal", user="bob", team="ml-vision", why="$500 spent of $500")
    with open(audit_file, "ab") as f:
        f.write(b'{"event":"data_class_refusal","team":"nlp"')  # a writer is mid-line

    _, text = api("GET", "/metrics")
    assert counter(text, "public_placement", "ml-vision") == 2
    assert counter(text, "public_placement", "nlp") == 1
    assert counter(text, "admin_change", "platform") == 1
    assert counter(text, "budget_refusal", "ml-vision") == 1
    assert counter(text, "data_class_refusal", "nlp") == 0

    with open(audit_file, "ab") as f:
        f.write(b',"user":"u","why":"w"}\n')
    _, text = api("GET", "/metrics")
    assert counter(text, "data_class_refusal", "nlp") == 1
    assert counter(text, "public_placement", "ml-vision") == 2  # nothing counted twice
