"""The file ledger (local backend, one user's notebooks): two processes recording at once add up exactly."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from mlp_kernel.backends.ledger import FileLedger, LedgerDoc, escape, unescape

ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import sys
from pathlib import Path
from mlp_kernel.backends.ledger import FileLedger
ledger = FileLedger(Path(sys.argv[1]))
for i in range(100):
    assert ledger.record_sync("ml-vision", "2026-12", sys.argv[2], f"{sys.argv[2]}-{i}", 10_000) == 10_000
"""


def test_two_processes_add_up_exactly(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), user], cwd=ROOT)
        for user in ("ada", "bob")
    ]
    assert [p.wait(120) for p in procs] == [0, 0]
    doc = asyncio.run(FileLedger(tmp_path).read("ml-vision", "2026-12"))
    assert doc.users == {"ada": 1_000_000, "bob": 1_000_000} and len(doc.kernels) == 200
    assert FileLedger(tmp_path).path("ml-vision", "2026-12").stat().st_mode & 0o777 == 0o600


def test_cumulative_records_never_double_count() -> None:
    doc = LedgerDoc()
    assert doc.record("ada", "k1", 500) == 500
    assert doc.record("ada", "k1", 500) == 0  # recorded again (a retry, a restarted gateway)
    assert doc.record("ada", "k1", 300) == 0  # never backwards
    assert doc.record("ada", "k1", 800) == 300
    assert LedgerDoc.from_data(doc.to_data()) == doc
    assert LedgerDoc.from_data({"u.x": "not a number", "u.y": "5", "other": "1"}).users == {"y": 5}


def test_names_become_configmap_keys_and_back() -> None:
    for name in ("ada", "ada@example.com", "a_b", "Zoë Smith", "../etc"):
        key = escape(name)
        assert all(c.isalnum() or c in "-._" for c in key) and unescape(key) == name
