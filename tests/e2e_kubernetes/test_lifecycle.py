"""A GPU (auto) kernel's pod over its life: preempted mid-cell, released when idle, shut down, orphaned."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.backend_kubernetes.e2e import blocker
from tests.gateway.conftest import text_of

from .conftest import kernel_pods, wait_until

pytestmark = pytest.mark.timeout(180)


def gpu_usage(member: Any, flavor: str) -> int:
    """GPUs of ``flavor`` the private ClusterQueue reports as reserved."""
    cq = member.get("kueue.x-k8s.io/v1beta2", "ClusterQueue", "gpu-private")
    for fu in (cq.get("status") or {}).get("flavorsReservation") or []:
        if fu["name"] == flavor:
            for r in fu["resources"]:
                if r["name"] == "nvidia.com/gpu":
                    return int(r["total"])
    return 0


def admitted_gpu_flavors(workload: dict[str, Any]) -> list[str]:
    """The flavors a Workload's admission assigns ``nvidia.com/gpu`` from."""
    admission = (workload.get("status") or {}).get("admission") or {}
    return [
        a["flavors"]["nvidia.com/gpu"]
        for a in admission.get("podSetAssignments") or []
        if "nvidia.com/gpu" in (a.get("flavors") or {})
    ]


def named(kind: str, member: Any, kernel_id: str, api_version: str = "v1") -> list[str]:
    """Names of ``kind`` objects in jupyter whose metadata mentions ``kernel_id`` (name or labels)."""
    objects = member.list(api_version, kind, "jupyter")
    return [o["metadata"]["name"] for o in objects if kernel_id in str(o["metadata"])]


async def test_preemption_mid_cell_ends_it_with_the_reason_and_the_next_cell_places_again(
    start_kube_kernel, kube_members
) -> None:
    private = kube_members.private
    k = await start_kube_kernel()
    reply, outputs = await k.run("%gpu tier=silver\nimport time\nx = 1", timeout=120)
    assert reply["content"]["status"] == "ok", text_of(outputs)
    [pod] = kernel_pods(private, k.kernel_id)
    outputs = []
    cell = asyncio.ensure_future(
        k.kc.execute_interactive(
            "print('sleeping', flush=True); time.sleep(60)", output_hook=outputs.append, timeout=120
        )
    )
    await wait_until(lambda: "sleeping" in text_of(outputs), 30, seen=lambda: text_of(outputs))
    private.preempt_pod("jupyter", pod["metadata"]["name"])
    reply = await asyncio.wait_for(cell, 60)
    text = text_of(outputs)
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "GpuKernelLost", text
    assert "GpuKernelLost" in text and "preempted" in text.lower(), text
    await wait_until(lambda: not kernel_pods(private, k.kernel_id), 30)

    reply, outputs = await k.run("print('again', 6 * 7)", timeout=120)
    text = text_of(outputs)
    assert reply["content"]["status"] == "ok" and "again 42" in text, text
    [new] = kernel_pods(private, k.kernel_id)
    assert new["metadata"]["name"] != pod["metadata"]["name"]


async def test_a_kernel_that_crashes_mid_cell_shows_its_last_output_and_the_next_cell_starts_again(
    start_kube_kernel, kube_members
) -> None:
    """A native library writes to the process's stderr and the process exits (as after a CUDA fault): the end
    of the pod's log is in the error that ends the cell, so the user sees why."""
    private = kube_members.private
    k = await start_kube_kernel()
    # ipykernel forwards fd 2 through a pipe and a thread that echoes it to the container's stderr: the pause
    # lets that thread run before the process is gone.
    crash = "import os, time\nos.write(2, b'CUDA error: an illegal memory access was encountered\\n')\n"
    crash += "time.sleep(1)\nos._exit(3)"
    reply, outputs = await k.run(crash, timeout=120)
    text = text_of(outputs)
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "GpuKernelLost", text
    evalue = reply["content"]["evalue"]
    assert "exited with code 3 (Error)" in evalue, evalue
    assert evalue.endswith("Its last output:\nCUDA error: an illegal memory access was encountered"), evalue
    assert "--existing" not in evalue and "IPKernelApp" not in evalue, "ipykernel's banner is not the reason"
    streamed = [m["content"]["text"] for m in outputs if m["msg_type"] == "stream"]
    assert not any("exited with code 3" in t for t in streamed), "said once, in the error"
    await wait_until(lambda: not kernel_pods(private, k.kernel_id), 30)

    reply, outputs = await k.run("print('again', 6 * 7)", timeout=120)
    assert reply["content"]["status"] == "ok" and "again 42" in text_of(outputs), text_of(outputs)


async def test_idle_release_frees_pod_secret_and_quota_and_the_next_cell_starts_a_new_pod(
    start_kube_kernel, kube_members
) -> None:
    private = kube_members.private
    k = await start_kube_kernel()
    reply, outputs = await k.run("%gpu idle=3s\nprint('first')", timeout=120)
    text = text_of(outputs)
    assert reply["content"]["status"] == "ok" and "Running on private/bronze" in text, text
    [pod] = kernel_pods(private, k.kernel_id)
    assert named("Secret", private, k.kernel_id)
    # Its Workload holds the bronze GPU. (Not the ClusterQueue's status: real Kueue updates that a moment
    # after admission, and a kernel that starts in 3 s may be idle-released before it shows the GPU.)
    workload = private.workload_for("jupyter", pod["metadata"]["name"])
    assert workload is not None and admitted_gpu_flavors(workload) == ["bronze"], workload

    await wait_until(lambda: not kernel_pods(private, k.kernel_id), 60)
    await wait_until(lambda: not named("Secret", private, k.kernel_id), 10)
    await wait_until(lambda: gpu_usage(private, "bronze") == 0, 10)
    await wait_until(lambda: k.record() is None, 10)
    await wait_until(lambda: k.status_file()["state"] == "released", 10, seen=k.status_file)
    # The quota is really back: a job asking for all 4 bronze GPUs is admitted and runs.
    blocker(private, "takes-all-bronze", 4, flavor="bronze")
    private.wait_for_pod_phase("jupyter", "takes-all-bronze", "Running")

    reply, outputs = await k.run("print('second')", timeout=120)
    text = text_of(outputs)
    assert reply["content"]["status"] == "ok" and "second" in text, text
    assert "GPU released after" in text and "idle" in text, text  # the user is told why it restarted
    assert "Running on private/silver" in text, text  # placed again on live state: bronze is now full
    [new] = kernel_pods(private, k.kernel_id)
    assert new["metadata"]["name"] != pod["metadata"]["name"]
