"""Fixtures for the Kubernetes backend tests: the in-repo test members, a policy naming them, a backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from mlp_kernel.backends.kubernetes.backend import KubernetesBackend
from mlp_kernel.backends.kubernetes.lifecycle import Timeouts
from mlp_kernel.placement.policy import Policy
from tests.kubeapi.fixtures import *  # noqa: F401,F403
from tests.kubeapi.members import KubeMembers
from tests.ports import free_port

from .policies import KERNELSPEC, members_policy


def free_ports(n: int = 5) -> dict[str, int]:
    """Five ports free right now, below the ephemeral range (tests/ports.py says why).

    The test kubelet runs kernels on this host, so pods share its ports, and a kernel binds the same fixed
    ports every time it (re)starts during a test.
    """
    ports = [free_port() for _ in range(n)]
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
