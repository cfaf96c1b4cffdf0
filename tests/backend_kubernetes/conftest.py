"""Fixtures for the Kubernetes backend tests: the in-repo test members, a policy naming them, a backend."""

from __future__ import annotations

import os
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mlp_kernel.backends.kubernetes.backend import KubernetesBackend
from mlp_kernel.backends.kubernetes.lifecycle import Timeouts
from mlp_kernel.placement.policy import Policy
from tests.kubeapi.fixtures import *  # noqa: F401,F403
from tests.kubeapi.members import KubeMembers

from .policies import KERNELSPEC, members_policy

_CHOSEN: set[int] = set()
_PICK = random.Random(os.urandom(8))


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _worker_slice(low: int, high: int) -> tuple[int, int]:
    """This pytest-xdist worker's share of ``[low, high)``: a port one worker picked (free when probed, bound
    only when its kernel starts) is never picked by another meanwhile."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or count < 2:
        return low, high
    size = (high - low) // count
    start = low + int(worker[2:]) * size
    return start, start + size


def free_ports(n: int = 5) -> dict[str, int]:
    """Five ports free right now, below the ephemeral range.

    The test kubelet runs kernels on this host, so pods share its ports, and a kernel binds the same fixed
    ports every time it (re)starts during a test. A port from the ephemeral range can meanwhile become the
    local end of any outgoing connection (an HTTP request to the test API, say) and the next kernel pod then
    dies with "Address already in use"; nothing takes a port below that range unless asked to.
    """
    low, high = _worker_slice(20000, _ephemeral_low())
    ports: list[int] = []
    while len(ports) < n:
        port = _PICK.randrange(low, high)
        if port in _CHOSEN:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                continue
        _CHOSEN.add(port)
        ports.append(port)
    return dict(zip(("shell", "iopub", "stdin", "control", "hb"), ports, strict=True))


@pytest.fixture
def test_policy() -> Policy:
    return members_policy()


def make_backend(
    kube_members: KubeMembers, policy: Policy, plain_clients: bool = True, **kw: Any
) -> KubernetesBackend:
    """A backend on the test members. ``plain_clients``: the test talks to the kernels itself with a plain
    jupyter_client (no CurveZMQ keys), so the backend's CurveZMQ default is turned off; CurveZMQ itself is
    tested by test_e2e_curve.py (``plain_clients=False``, the default on) and through the gateway's relay."""
    options: dict[str, Any] = {
        "kubeconfig": kube_members.kubeconfig_path,
        "ports": free_ports(),
        "timeouts": Timeouts(queued_s=120, scheduling_s=60, pulling_s=60, connecting_s=60),
        "tick_s": 0.2,
        "queue_refresh_s": 0.5,
    }
    if plain_clients:
        options["curve"] = False
    options.update(kw)
    return KubernetesBackend(policy, KERNELSPEC, **options)


@pytest.fixture
async def backend(kube_members: KubeMembers, test_policy: Policy) -> AsyncIterator[KubernetesBackend]:
    b = make_backend(kube_members, test_policy)
    try:
        yield b
    finally:
        b.close()
