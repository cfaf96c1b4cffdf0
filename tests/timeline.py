"""A per-test timeline of a pytest run, for finding the suite's critical path (docs/benchmarks.md, "Test suite
wall time"): which xdist worker ran each test, when it started and ended, and its setup, call and teardown.

Not loaded by default. ``MLP_TEST_TIMELINE=/tmp/tl.jsonl .venv/bin/pytest -p tests.timeline -n 3 --dist
loadgroup`` appends one JSON line per test from every worker (``w``: the worker, ``s``/``e``: wall-clock
start and end, ``setup``/``call``/``teardown``: seconds, ``out``: the outcome). A line is one short write, so
the workers' lines do not interleave. When each worker goes idle is the latest ``e`` of its lines.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

_phases: dict[str, Any] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _phases.clear()
    start = time.time()
    try:
        return (yield)
    finally:
        path = os.environ.get("MLP_TEST_TIMELINE")
        if path:
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            line = {"id": item.nodeid, "w": worker, "s": start, "e": time.time(), **_phases}
            with open(path, "a") as f:
                f.write(json.dumps(line) + "\n")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _phases[report.when] = round(report.duration, 3)
    if report.failed:
        _phases["out"] = "failed"
    elif report.when == "call" or report.skipped:
        _phases.setdefault("out", report.outcome)
