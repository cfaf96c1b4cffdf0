"""Pytest fixtures for the real control plane (see docs/test-kube-api.md, "The real control plane").

``real_members`` (package-scoped: start-up takes seconds, so once for tests/cluster, stopped after it) ->
``RealMembers``: private + public members, each a real etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and Kueue with the process kubelet, one kubeconfig with contexts ``private`` and ``public``.
``real_kube_members`` (function-scoped) is the same object after ``reset()``: no test pods, and the default
Kueue objects of ``tests.kubeapi.fixtures`` loaded afresh, so each test starts from the same queues.

``samples_for_module(docs)`` makes a module-scoped fixture for samples that create namespaces: their tests
apply ``docs()`` themselves (the reset between tests deletes Kueue objects), the namespaces live for the
module and ``RealMember.delete_applied`` removes them at its end (a namespace takes >= 5 s to delete: the
wait falls on whoever applies it again, ``RealMember.apply``).

Without Go (and nothing built) the tests skip with one line saying why; with ``CI`` set they fail instead, so
CI cannot pass by skipping them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ci import unavailable
from tests.kubeapi.fixtures import PRIVATE_KUEUE, PRIVATE_NODES, PUBLIC_KUEUE, PUBLIC_NODES

from . import build
from .members import RealMembers
from .rest import Obj


def _unavailable(reason: str) -> None:
    unavailable(f"the real control plane: {reason}")


@pytest.fixture(scope="package")
def real_members(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealMembers]:
    reason = build.missing_reason()
    if reason:
        _unavailable(reason)
    if not all(c.built for c in build.COMPONENTS):
        build.build(log=lambda line: print(line, file=sys.stderr))
    config: dict[str, Any] = {
        "private_nodes": PRIVATE_NODES,
        "public_nodes": PUBLIC_NODES,
        "private_kueue": PRIVATE_KUEUE,
        "public_kueue": PUBLIC_KUEUE,
        "kubelet_options": {},
    }
    t0 = time.monotonic()
    members = RealMembers(Path(tmp_path_factory.mktemp("real-cluster")), config).start()
    members.startup_s = time.monotonic() - t0  # type: ignore[attr-defined]
    try:
        yield members
    finally:
        members.stop()


@pytest.fixture
def real_kube_members(real_members: RealMembers) -> RealMembers:
    real_members.reset()
    return real_members


def samples_for_module(docs: Callable[[], list[Obj]]) -> Any:
    """A module-scoped fixture that deletes what ``docs()`` applies at the end of the module (the private
    member); its namespaces may still be terminating when the next module starts."""

    @pytest.fixture(scope="module")
    def fixture(real_members: RealMembers) -> Iterator[None]:
        yield
        real_members.private.delete_applied(docs())

    return fixture
