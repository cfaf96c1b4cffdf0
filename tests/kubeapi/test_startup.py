"""Start-up cost: fixtures start fresh servers per test, so a server must start in under 0.5 s."""

from __future__ import annotations

import statistics
import time

from .members import Member
from .schema import DEFAULT_CRD_DIR


def test_member_starts_quickly_once_crds_are_parsed(tmp_path):
    Member("warm", crd_dir=DEFAULT_CRD_DIR, kubelet_options={"root_dir": tmp_path / "w"}).start().stop()
    times = []
    for i in range(3):
        started = time.perf_counter()
        member = Member(
            f"m{i}", crd_dir=DEFAULT_CRD_DIR, kubelet_options={"root_dir": tmp_path / str(i)}
        ).start()
        times.append(time.perf_counter() - started)
        member.stop()
    # The brief asks for < 0.5 s; measured ~0.02 s. The bound leaves room for a loaded CI machine.
    assert statistics.median(times) < 0.5, times
