"""End to end against the test members: a real pod runs a real ipykernel we talk to over its ports."""

from __future__ import annotations

import socket

import pytest

from mlp_kernel.backends.base import LaunchError, Phase
from mlp_kernel.backends.kubernetes.lifecycle import Timeouts

from .conftest import make_backend
from .e2e import execute, kernel_pods, launch_all, spec

pytestmark = pytest.mark.timeout(240)


async def test_free_silver_quota_runs_a_kernel_that_answers(backend, kube_members) -> None:
    events = await launch_all(backend, spec())
    phases = [e.phase for e in events]
    assert phases[-1] == Phase.CONNECTED
    assert Phase.SCHEDULED in phases or Phase.PULLING in phases or Phase.STARTING in phases
    remote = events[-1].remote
    assert remote is not None and remote.ip == "127.0.0.1" and remote.flavor == "silver"
    result = await execute(remote, "print(6 * 7)")
    assert result["info"]["status"] == "ok"
    assert result["status"] == "ok" and result["output"].strip() == "42"
    pod = kube_members.private.find("v1", "Pod", remote.handle["pod"], "jupyter")
    assert pod["spec"]["nodeName"] == "private-silver-1"
    await backend.release(remote)


IMAGE = "quay.io/jupyter/pytorch-notebook:cuda12-latest"  # the shipped template's default


async def test_a_slow_image_pull_is_reported_while_it_happens(backend, kube_members) -> None:
    kube_members.private.kubelet.pull_delays[IMAGE] = 3.0
    events = await launch_all(backend, spec())
    pulling = [e for e in events if e.phase == Phase.PULLING]
    assert pulling and f'Pulling image "{IMAGE}"' in pulling[0].message
    assert events[-1].phase == Phase.CONNECTED
    await backend.release(events[-1].remote)


async def test_an_image_pull_longer_than_its_timeout_fails_and_cleans_up(kube_members, test_policy) -> None:
    kube_members.private.kubelet.pull_delays[IMAGE] = 60.0
    backend = make_backend(kube_members, test_policy, timeouts=Timeouts(pulling_s=2))
    launch = spec()
    with pytest.raises(LaunchError, match="image did not start on silver on private within 2 s"):
        await launch_all(backend, launch)
    assert kernel_pods(kube_members.private, launch.kernel_id) == [] or all(
        p["metadata"].get("deletionTimestamp") for p in kernel_pods(kube_members.private, launch.kernel_id)
    )
    backend.close()


async def test_a_kernel_that_cannot_start_shows_why_from_its_output(kube_members, test_policy) -> None:
    """A port of the kernel is taken (a sidecar's, say): ipykernel exits with a traceback, the kubelet keeps
    its end (the pod says FallbackToLogsOnError) and the launch error quotes it."""
    backend = make_backend(kube_members, test_policy)
    taken = socket.socket()
    taken.bind(("0.0.0.0", backend.ports["shell"]))
    taken.listen()
    launch = spec()
    try:
        with pytest.raises(LaunchError) as failed:
            await launch_all(backend, launch)
    finally:
        taken.close()
        backend.close()
    message = str(failed.value)
    assert "failed to start" in message and "exited with code 1" in message, message
    assert f"ZMQError: Address already in use (addr='tcp://0.0.0.0:{backend.ports['shell']}')" in message
