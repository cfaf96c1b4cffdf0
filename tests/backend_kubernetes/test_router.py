"""The router is the gateway's one backend (``GatewayBackend``): it answers the optional calls (live state,
leases) for whichever backend owns a kernel, so the gateway never asks a backend what it can do.

Real components: the Kubernetes backend against the test API's members, the local backend as it is.
"""

from __future__ import annotations

import asyncio

import pytest

from mlp_kernel.backends import BackendRouter
from mlp_kernel.backends.base import Leased, RemoteKernel, StateReading
from mlp_kernel.backends.local import LocalBackend
from mlp_kernel.placement import ClusterState

from .conftest import make_backend
from .e2e import launch_all, spec

pytestmark = pytest.mark.timeout(180)


def router(kube_members, policy, force: str = "", **kw) -> BackendRouter:
    return BackendRouter(
        lambda member: policy.members[member].backend if member in policy.members else "local",
        {"local": LocalBackend, "kubernetes": lambda: make_backend(kube_members, policy, **kw)},
        force=force,
    )


def test_the_backends_declare_their_capabilities(kube_members, test_policy):
    kube = make_backend(kube_members, test_policy)
    assert isinstance(kube, Leased) and isinstance(kube, StateReading)
    assert not isinstance(LocalBackend(), Leased)
    # the local backend reads its machine's GPU ledger (the declared capacity without one)
    assert isinstance(LocalBackend(), StateReading)
    kube.close()


async def test_live_state_for_kubernetes_members_declared_capacity_when_forced_local(
    kube_members, test_policy
):
    live = await router(kube_members, test_policy).cluster_state(test_policy)
    assert {name: m.source for name, m in live.members.items()} == {"private": "live", "public": "live"}
    declared = await router(kube_members, test_policy, force="local").cluster_state(test_policy)
    assert declared == ClusterState.from_policy(test_policy)


async def test_a_kubernetes_kernel_holds_a_lease_the_router_renews(kube_members, test_policy):
    r = router(kube_members, test_policy, lease_duration_s=30)
    remote = (await launch_all(r, spec()))[-1].remote
    assert remote is not None and r.holds_lease(remote)
    assert r.renew_interval_s(remote, 60.0) == 10.0 and r.renew_interval_s(remote, 5.0) == 5.0

    def renewed() -> str:
        lease = kube_members.private.find(
            "coordination.k8s.io/v1", "Lease", remote.handle["lease"], "jupyter"
        )
        return lease["spec"]["renewTime"]

    before = renewed()
    await asyncio.sleep(1.1)
    await r.renew(remote)
    assert renewed() > before
    await r.release(remote)


async def test_a_local_kernel_holds_no_lease(kube_members, test_policy):
    r = router(kube_members, test_policy)
    remote = RemoteKernel("k", "127.0.0.1", 1, 2, 3, 4, 5, member="laptop")  # a member on the local backend
    assert not r.holds_lease(remote)
    assert r.renew_interval_s(remote, 60.0) == 60.0
    await r.renew(remote)  # nothing to renew: returns without touching any backend but the local one
    assert set(r._instances) == {"local"}
