"""A flaky API server: 5xx answers are retried, dropped watches resume, and no launch makes two pods."""

from __future__ import annotations

import asyncio

import pytest

from mlp_kernel.backends.base import LaunchError, Phase
from mlp_kernel.backends.kubernetes.objects import render_kernel_objects

from .conftest import make_backend
from .e2e import KEY, blocker, collect, execute, kernel_pods, launch_all, spec

pytestmark = pytest.mark.timeout(240)


async def test_500s_on_create_are_retried_and_make_one_pod(backend, kube_members) -> None:
    private = kube_members.private
    private.faults.fail_next(2, path=r"/namespaces/jupyter/pods$", method="POST")
    private.faults.fail_next(2, path=r"/secrets$", method="POST", code=503, reason="ServiceUnavailable")
    launch = spec()
    events = await launch_all(backend, launch)
    assert events[-1].phase == Phase.CONNECTED
    assert len(kernel_pods(private, launch.kernel_id)) == 1
    assert sum(1 for kind, method, _ in private.faults.fired if kind == "error") == 4
    assert (await execute(events[-1].remote, "1+1"))["output"] == "2"
    await backend.release(events[-1].remote)


async def test_dropped_watches_resume_and_the_launch_completes(backend, kube_members) -> None:
    private = kube_members.private
    blocker(private, "blocker-running", 4)
    private.wait_for_pod_phase("jupyter", "blocker-running", "Running")
    launch = spec()
    task, seen = collect(backend, launch)
    while not any(e.phase == Phase.QUEUED for e in seen):
        await asyncio.sleep(0.1)
    for clean in (False, True, False):
        private.faults.drop_watches(clean=clean)
        await asyncio.sleep(0.5)
    private.delete("v1", "Pod", "blocker-running", "jupyter")  # the admission happens while watches reconnect
    private.faults.drop_watches()
    await asyncio.wait_for(task, 120)
    assert seen[-1].phase == Phase.CONNECTED
    assert any(kind == "drop" for kind, _, _ in private.faults.fired)
    assert len(kernel_pods(private, launch.kernel_id)) == 1
    await backend.release(seen[-1].remote)


async def test_a_create_whose_answer_was_lost_is_adopted(backend, kube_members, test_policy) -> None:
    """The pod exists already because our own earlier POST succeeded but its answer never came back."""
    private = kube_members.private
    launch = spec()
    _secret, pod = render_kernel_objects(
        backend.kernelspec_dir,
        test_policy,
        "private",
        "silver",
        "alice",
        kernel_id=launch.kernel_id,
        generation=1,
        key=KEY,
        ports=backend.ports,
        gateway=backend.gateway_id,
        cpu="1",
        memory="1Gi",
    )
    private.create(pod)
    events = await launch_all(backend, launch)
    assert events[-1].phase == Phase.CONNECTED
    [only] = kernel_pods(private, launch.kernel_id)
    assert only["metadata"]["name"] == pod["metadata"]["name"]
    await backend.release(events[-1].remote)


async def test_a_leftover_pod_of_another_gateway_is_not_adopted(kube_members, test_policy) -> None:
    private = kube_members.private
    launch = spec()
    old = make_backend(kube_members, test_policy)
    _secret, pod = render_kernel_objects(
        old.kernelspec_dir,
        test_policy,
        "private",
        "silver",
        "alice",
        kernel_id=launch.kernel_id,
        generation=1,
        key="old-key",
        ports=old.ports,
        gateway=old.gateway_id,
    )
    pod["spec"]["containers"][0]["command"] = ["python", "-c", "import time; time.sleep(600)"]
    private.create(pod)
    new = make_backend(kube_members, test_policy)
    events = await launch_all(new, launch)
    assert events[-1].remote.handle["pod"].endswith("-2")
    assert len(kernel_pods(private, launch.kernel_id)) == 2  # the leftover is gc's business, not adopted
    await new.release(events[-1].remote)
    old.close()
    new.close()


async def test_persistent_500s_end_with_a_clear_error_and_no_pod(backend, kube_members) -> None:
    private = kube_members.private
    private.faults.fail_next(20, path=r"/namespaces/jupyter/pods$", method="POST")
    launch = spec()
    with pytest.raises(LaunchError, match="Cannot create the kernel pod .* answered 500"):
        await launch_all(backend, launch)
    assert kernel_pods(private, launch.kernel_id) == []


async def test_forbidden_watch_fails_fast_with_rbac_advice(backend, kube_members) -> None:
    private = kube_members.private
    private.faults.fail_next(
        100, path=r"/namespaces/jupyter/pods$", method="GET", code=403, reason="Forbidden"
    )
    launch = spec()
    with pytest.raises(LaunchError, match="403 Forbidden.*docs/samples/rbac"):
        await asyncio.wait_for(launch_all(backend, launch), 60)
    private.faults.clear()
    private.wait_for(lambda: not kernel_pods(private, launch.kernel_id) or None, 30, what="pod cleaned up")


async def test_pod_deleted_while_the_watch_was_down_and_history_expired_is_noticed(
    backend, kube_members
) -> None:
    private = kube_members.private
    remote = (await launch_all(backend, spec()))[-1].remote
    waiter = asyncio.create_task(backend.wait_exit(remote))
    await asyncio.sleep(1)
    private.faults.fail_next(
        3, path=r"/namespaces/jupyter/pods$", method="GET"
    )  # reconnects fail for a while
    private.faults.drop_watches()
    private.delete("v1", "Pod", remote.handle["pod"], "jupyter")
    private.wait_for(lambda: private.find("v1", "Pod", remote.handle["pod"], "jupyter") is None or None, 30)
    private.store.compact()  # the resumed watch gets 410 Gone and must relist
    info = await asyncio.wait_for(waiter, 60)
    assert info.reason == "deleted"
    pod_requests = [p for _m, p in private.requests if "/pods?" in p and remote.handle["pod"] in p]
    first_watch = next(i for i, p in enumerate(pod_requests) if "watch=true" in p)
    assert any("watch=true" not in p for p in pod_requests[first_watch:])  # 410 Gone -> relisted
