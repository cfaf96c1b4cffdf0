"""Queued launches: position and reason from Kueue, cancellation leaves nothing, timeouts explain."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from mlp_kernel.backends.base import LaunchError, Phase
from mlp_kernel.backends.kubernetes.lifecycle import Timeouts

from .conftest import make_backend
from .e2e import blocker, collect, gated, kernel_pods, launch_all, spec, until

pytestmark = pytest.mark.timeout(240)


def fill_silver(member) -> None:
    blocker(member, "blocker-running", 4)
    member.wait_for_pod_phase("jupyter", "blocker-running", "Running")
    blocker(member, "blocker-waiting", 1)
    member.wait_for(lambda: gated(member, "blocker-waiting") or None, 30, what="blocker-waiting queued")


async def test_full_private_queue_reports_position_reason_and_eta(backend, kube_members) -> None:
    private = kube_members.private
    fill_silver(private)
    launch = spec(expected_wait_s=600)
    events = []
    async for event in backend.launch(launch):
        events.append(event)
        if event.phase == Phase.QUEUED and event.detail.get("position"):
            break
    queued = events[-1]
    assert queued.detail["position"] == 2  # behind blocker-waiting
    assert queued.detail["local_queue"] == "kernels"
    assert queued.detail["eta_s"] is not None and 0 < queued.detail["eta_s"] <= 600
    assert "position 2" in queued.message and "ETA" in queued.message
    assert queued.detail["reason"]  # Kueue's QuotaReserved reason, e.g. Pending / WaitingForQuota
    assert len(kernel_pods(private, launch.kernel_id)) == 1


async def test_cancelling_a_queued_launch_deletes_its_pod_and_secret(backend, kube_members) -> None:
    private = kube_members.private
    fill_silver(private)
    launch = spec()

    async def until_queued() -> None:
        async with contextlib.aclosing(backend.launch(launch)) as events:  # as the gateway iterates
            async for event in events:
                if event.phase == Phase.QUEUED:
                    await asyncio.sleep(3600)  # the user waits; then interrupts

    task = asyncio.create_task(until_queued())
    await asyncio.wait_for(until(lambda: kernel_pods(private, launch.kernel_id)), 60)
    await asyncio.sleep(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert kernel_pods(private, launch.kernel_id) == []
    assert [
        s for s in private.list("v1", "Secret", "jupyter") if launch.kernel_id in s["metadata"]["name"]
    ] == []


async def test_aclose_of_the_launch_iterator_cleans_up(backend, kube_members) -> None:
    private = kube_members.private
    fill_silver(private)
    launch = spec()
    events = backend.launch(launch)
    async for event in events:
        if event.phase == Phase.QUEUED:
            break
    await events.aclose()
    assert kernel_pods(private, launch.kernel_id) == []


async def test_abandoned_launch_iterator_is_cleaned_up_by_the_loop(backend, kube_members) -> None:
    private = kube_members.private
    fill_silver(private)
    launch = spec()

    async def until_queued() -> None:
        async for event in backend.launch(launch):  # no aclosing: the loop's asyncgen finalizer closes it
            if event.phase == Phase.QUEUED:
                await asyncio.sleep(3600)

    task = asyncio.create_task(until_queued())
    await asyncio.wait_for(until(lambda: kernel_pods(private, launch.kernel_id)), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(until(lambda: not kernel_pods(private, launch.kernel_id)), 30)


async def test_queue_timeout_fails_with_a_clear_message_and_withdraws(kube_members, test_policy) -> None:
    private = kube_members.private
    fill_silver(private)
    backend = make_backend(kube_members, test_policy, timeouts=Timeouts(queued_s=2))
    launch = spec()
    with pytest.raises(LaunchError, match="No GPU became free on silver.*withdrawn"):
        await launch_all(backend, launch)
    assert kernel_pods(private, launch.kernel_id) == []
    backend.close()


async def test_queued_kernel_starts_when_quota_frees(backend, kube_members) -> None:
    private = kube_members.private
    blocker(private, "blocker-running", 4)
    private.wait_for_pod_phase("jupyter", "blocker-running", "Running")
    launch = spec()
    task, seen = collect(backend, launch)
    await asyncio.wait_for(until(lambda: any(e.phase == Phase.QUEUED for e in seen)), 60)
    private.delete("v1", "Pod", "blocker-running", "jupyter")
    await asyncio.wait_for(task, 120)
    phases = [e.phase for e in seen]
    assert phases[0] == Phase.QUEUED and phases[-1] == Phase.CONNECTED
    # Each event describes the launch as it is when observed: admission, binding and the image check can all
    # land between two observations on a busy machine (seen once in CI: queued, starting, connected), so what
    # must follow the queue is some phase only an admitted Workload's pod reaches, on a node.
    after_queue = seen[max(i for i, e in enumerate(seen) if e.phase == Phase.QUEUED) + 1 : -1]
    admitted = {Phase.ADMITTED, Phase.SCHEDULED, Phase.PULLING, Phase.STARTING}
    assert after_queue and all(e.phase in admitted for e in after_queue), phases
    assert any(e.detail.get("node") for e in after_queue if e.phase != Phase.ADMITTED), seen
    await backend.release(seen[-1].remote)


async def test_cancelling_the_pending_next_event_withdraws_the_queued_pod(backend, kube_members) -> None:
    """What the gateway does to move a queued kernel to another member: cancel the awaited __anext__."""
    private = kube_members.private
    fill_silver(private)
    launch = spec()
    events = backend.launch(launch)
    it = events.__aiter__()
    while (await it.__anext__()).phase != Phase.QUEUED:
        pass
    pending = asyncio.ensure_future(it.__anext__())
    await asyncio.sleep(0.5)
    pending.cancel()
    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
        await pending
    await events.aclose()
    assert kernel_pods(private, launch.kernel_id) == []
