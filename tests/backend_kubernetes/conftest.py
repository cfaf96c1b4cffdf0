"""Fixtures for the Kubernetes backend tests: the in-repo test members, a policy naming them, a backend."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mlp_kernel.backends.kubernetes.backend import KubernetesBackend
from mlp_kernel.backends.kubernetes.lifecycle import Timeouts
from mlp_kernel.placement.policy import Policy
from tests.kubeapi.fixtures import *  # noqa: F401,F403
from tests.kubeapi.members import KubeMembers

from .policies import KERNELSPEC, members_policy


def free_ports(n: int = 5) -> dict[str, int]:
    """Five ports free right now (the test kubelet runs kernels on this host, so pods share its ports)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return dict(zip(("shell", "iopub", "stdin", "control", "hb"), ports, strict=True))


@pytest.fixture
def test_policy() -> Policy:
    return members_policy()


def make_backend(kube_members: KubeMembers, policy: Policy, **kw: Any) -> KubernetesBackend:
    options: dict[str, Any] = {
        "kubeconfig": kube_members.kubeconfig_path,
        "ports": free_ports(),
        "timeouts": Timeouts(queued_s=120, scheduling_s=60, pulling_s=60, connecting_s=60),
        "tick_s": 0.2,
        "queue_refresh_s": 0.5,
    }
    options.update(kw)
    return KubernetesBackend(policy, KERNELSPEC, **options)


@pytest.fixture
async def backend(kube_members: KubeMembers, test_policy: Policy) -> AsyncIterator[KubernetesBackend]:
    b = make_backend(kube_members, test_policy)
    try:
        yield b
    finally:
        b.close()
