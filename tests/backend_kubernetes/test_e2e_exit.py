"""After launch: preemption and OOM kills are explained by wait_exit; release frees pod, Secret and quota."""

from __future__ import annotations

import asyncio

import pytest

from mlp_kernel.backends.base import Phase

from .e2e import blocker, execute, gated, kernel_pods, launch_all, spec

pytestmark = pytest.mark.timeout(240)


async def running(backend, **kw):
    events = await launch_all(backend, spec(**kw))
    assert events[-1].phase == Phase.CONNECTED
    return events[-1].remote


async def test_preemption_mid_run_says_preempted(backend, kube_members) -> None:
    remote = await running(backend)
    waiter = asyncio.create_task(backend.wait_exit(remote))
    await asyncio.sleep(0.5)
    assert not waiter.done()
    kube_members.private.preempt_pod(
        "jupyter", remote.handle["pod"], message="Preempted to accommodate a workload of priority high"
    )
    info = await asyncio.wait_for(waiter, 60)
    assert info.reason == "preempted"
    assert "preempted by Kueue" in info.message and "priority high" in info.message
    assert "run the cell again" in info.message
    await backend.release(remote)


async def test_oom_kill_says_oomkilled_with_the_memory_limit(backend, kube_members) -> None:
    remote = await running(backend)
    waiter = asyncio.create_task(backend.wait_exit(remote))
    await asyncio.sleep(0.5)
    kube_members.private.oom_kill_pod("jupyter", remote.handle["pod"])
    info = await asyncio.wait_for(waiter, 60)
    assert info.reason == "oomkilled"
    assert "OOMKilled" in info.message and "1Gi" in info.message and "%gpu memory=" in info.message
    await backend.release(remote)
    assert kernel_pods(kube_members.private, remote.kernel_id) == []


async def test_pod_deleted_by_someone_else_is_reported(backend, kube_members) -> None:
    remote = await running(backend)
    waiter = asyncio.create_task(backend.wait_exit(remote))
    await asyncio.sleep(0.5)
    kube_members.private.delete("v1", "Pod", remote.handle["pod"], "jupyter")
    info = await asyncio.wait_for(waiter, 60)
    assert info.reason == "deleted" and "someone other than this notebook" in info.message


async def test_release_deletes_pod_secret_lease_and_frees_quota_at_once(backend, kube_members) -> None:
    private = kube_members.private
    remote = await running(backend, gpus=4)  # all silver quota
    blocker(private, "next-in-line", 1)
    private.wait_for(lambda: gated(private, "next-in-line") or None, 30, what="next-in-line queued")
    assert private.find("v1", "Secret", remote.handle["secret"], "jupyter") is not None
    assert private.find("coordination.k8s.io/v1", "Lease", remote.handle["lease"], "jupyter") is not None
    await backend.release(remote)
    private.wait_for(
        lambda: private.find("v1", "Pod", remote.handle["pod"], "jupyter") is None or None,
        30,
        what="kernel pod gone",
    )
    assert private.find("v1", "Secret", remote.handle["secret"], "jupyter") is None
    assert private.find("coordination.k8s.io/v1", "Lease", remote.handle["lease"], "jupyter") is None
    private.wait_for(
        lambda: not gated(private, "next-in-line") or None, 30, what="quota given to next-in-line"
    )
    await backend.release(remote)  # idempotent
    assert await backend.release_record(backend.handle_record(remote)) is False


async def test_released_kernel_wait_exit_returns_released(backend, kube_members) -> None:
    remote = await running(backend)
    waiter = asyncio.create_task(backend.wait_exit(remote))
    await asyncio.sleep(0.5)
    await backend.release(remote)
    info = await asyncio.wait_for(waiter, 60)
    assert info.reason == "released"


async def test_secret_is_owned_by_the_pod_and_holds_the_only_copy_of_the_key(backend, kube_members) -> None:
    from .e2e import KEY

    remote = await running(backend)
    private = kube_members.private
    secret = private.find("v1", "Secret", remote.handle["secret"], "jupyter")
    pod = private.find("v1", "Pod", remote.handle["pod"], "jupyter")
    [owner] = secret["metadata"]["ownerReferences"]
    assert owner["kind"] == "Pod" and owner["uid"] == pod["metadata"]["uid"]
    assert KEY not in str(pod)
    result = await execute(remote, "import os; print(any('" + KEY + "' in v for v in os.environ.values()))")
    assert result["output"].strip() == "False"
    private.delete("v1", "Pod", remote.handle["pod"], "jupyter")
    private.wait_for(
        lambda: private.find("v1", "Secret", remote.handle["secret"], "jupyter") is None or None,
        30,
        what="Secret garbage-collected with its pod",
    )
