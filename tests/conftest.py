"""The suite under pytest-xdist (``.ci/run`` runs it on 3 workers with ``--dist loadgroup``).

Every test in ``tests/cluster`` goes to one worker: the real control plane there is a package-scoped fixture,
and each worker that ran one of those tests would start (and feed) a plane of its own on the same two cores.
``tests/hub`` likewise shares one JupyterHub (a module-scoped fixture) on one worker.
The scheduler below does the grouping by path, not with ``xdist_group`` marks: pytest-xdist 3.8 turns a mark
into a nodeid suffix through ``Item._nodeid``, which pytest 9 no longer reads, so marks group nothing there.
The unittest classes of ``tests/gateway/test_kernel_test_suite.py`` stay whole too: each starts one kernel in
``setUpClass`` and the *cold* class's first test starts its GPU kernel, so a class split over workers would
start that kernel inside whichever test a worker happened to run first. Everything else is spread test by
test; the biggest group (tests/cluster) is handed out first. ``tests/cluster/test_minio.py`` is the one file
there that needs no plane (it starts its own S3 server), so it is spread like the rest: on the plane's worker
it only lengthened the suite's critical path (docs/benchmarks.md, "Test suite wall time").

"""

from __future__ import annotations

from typing import Any

import pytest

from tests import ports

ports.install()  # kernels' tcp ports below the ephemeral range, a slice per worker (tests/ports.py says why)

ONE_WORKER = {"tests/cluster/": "real-plane", "tests/hub/": "hub"}  # nodeid prefix -> its tests' group
ANYWHERE = ("tests/cluster/test_minio.py::",)  # under a ONE_WORKER prefix, yet using nothing the group shares
WHOLE_CLASSES = ("tests/gateway/test_kernel_test_suite.py::",)  # nodeid prefix: one group per class


def group_of(nodeid: str) -> str | None:
    """The work unit ``nodeid`` shares with others, or None when it can go anywhere."""
    if nodeid.startswith(ANYWHERE):
        return None
    for prefix, group in ONE_WORKER.items():
        if nodeid.startswith(prefix):
            return group
    if nodeid.startswith(WHOLE_CLASSES):
        return nodeid.rsplit("::", 1)[0]
    return None


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class PathGroups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid) or super()._split_scope(nodeid)

    return PathGroups(config, log)
