"""The audit log's contract: whole JSON lines from many processes, the configured destination, no raising."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlp_kernel import audit

WRITER = """
import sys
from mlp_kernel import audit
for i in range(int(sys.argv[1])):
    audit.record("public_placement", user=sys.argv[2], team="ml-vision", why="queue wait " + "x" * 300, n=i)
"""


def test_two_processes_append_whole_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "deep" / "audit.jsonl"
    env = {"MLP_KERNEL_AUDIT_LOG": str(log), "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, "200", who], env=env, cwd=Path(__file__).parents[2])
        for who in ("ada", "bob")
    ]
    assert [p.wait(60) for p in procs] == [0, 0]
    records = audit.read(log)
    assert len(records) == 400
    assert len(log.read_text().splitlines()) == 400  # no torn or merged lines
    for who in ("ada", "bob"):
        assert [r["n"] for r in records if r["user"] == who] == list(range(200))
    assert log.stat().st_mode & 0o777 == 0o600


def test_fixed_fields_cannot_be_overridden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLP_KERNEL_AUDIT_LOG", str(tmp_path / "a.jsonl"))
    audit.record("admin_change", user="root", team="platform", why="note", **{"time": "x"})
    (rec,) = audit.read(tmp_path / "a.jsonl")
    assert rec["event"] == "admin_change" and rec["user"] == "root" and rec["what_time"] == "x"
    assert rec["time"].endswith("Z") and rec["why"] == "note"


def test_stdout_destination_writes_fd_1() -> None:
    code = (
        "from mlp_kernel import audit\naudit.record('budget_refusal', user='u', team='t', why='o', spend=5)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"MLP_KERNEL_AUDIT_LOG": "-", "PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out)["spend"] == 5


def test_off_and_unwritable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MLP_KERNEL_AUDIT_LOG", "off")
    audit.record("admin_change", user="u", team="t", why="w")
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("MLP_KERNEL_AUDIT_LOG", str(blocker / "sub" / "audit.jsonl"))
    monkeypatch.setattr(audit, "_warned", False)
    audit.record("admin_change", user="u", team="t", why="w")  # never raises
    audit.record("admin_change", user="u", team="t", why="w")
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "cannot be written" in caplog.records[0].message


def test_default_is_the_jupyter_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MLP_KERNEL_AUDIT_LOG", raising=False)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path))
    assert audit.destination() == str(tmp_path / "mlp-kernel" / "audit.jsonl")
