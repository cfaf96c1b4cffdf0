"""Helpers for end-to-end tests: launch specs, collecting events, talking to the real remote ipykernel."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient

from mlp_kernel.backends.base import LaunchEvent, LaunchSpec, RemoteKernel
from mlp_kernel.placement.types import Action, Decision, GpuRequest

KEY = "e2e-" + uuid.uuid4().hex


def spec(
    member: str = "private",
    flavor: str = "silver",
    gpus: int = 1,
    user: str = "alice",
    kernel_id: str | None = None,
    expected_wait_s: float | None = None,
    **kw: Any,
) -> LaunchSpec:
    decision = Decision(
        action=Action.RUN,
        member=member,
        flavor=flavor,
        local_queue="kernels",
        namespace="jupyter",
        gpu_count=gpus,
        expected_wait_s=expected_wait_s,
    )
    return LaunchSpec(
        kernel_id=kernel_id or str(uuid.uuid4()),
        key=KEY,
        signature_scheme="hmac-sha256",
        decision=decision,
        request=GpuRequest(gpu_count=gpus, cpu="1", memory="1Gi"),
        user=user,
        **kw,
    )


async def launch_all(backend: Any, launch_spec: LaunchSpec) -> list[LaunchEvent]:
    return [event async for event in backend.launch(launch_spec)]


def collect(backend: Any, launch_spec: LaunchSpec) -> tuple[asyncio.Task[None], list[LaunchEvent]]:
    """Run a launch in the background; the list fills with its events as they come."""
    seen: list[LaunchEvent] = []

    async def run() -> None:
        async for event in backend.launch(launch_spec):
            seen.append(event)

    return asyncio.create_task(run()), seen


async def until(check: Any, poll: float = 0.1) -> Any:
    """Wait until ``check()`` is truthy and return it (wrap in asyncio.wait_for for a limit)."""
    while not (value := check()):
        await asyncio.sleep(poll)
    return value


def client_for(remote: RemoteKernel) -> AsyncKernelClient:
    kc = AsyncKernelClient()
    kc.load_connection_info(
        {
            "ip": remote.ip,
            "transport": remote.transport,
            "key": KEY,
            "signature_scheme": "hmac-sha256",
            "shell_port": remote.shell_port,
            "iopub_port": remote.iopub_port,
            "stdin_port": remote.stdin_port,
            "control_port": remote.control_port,
            "hb_port": remote.hb_port,
        }
    )
    return kc


async def execute(remote: RemoteKernel, code: str, timeout: float = 60) -> dict[str, Any]:
    """Run ``code`` on the remote kernel; returns kernel_info and the execute result/stream text."""
    kc = client_for(remote)
    kc.start_channels()
    try:
        info = await kc.kernel_info(reply=True, timeout=timeout)
        outputs: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            content = msg["content"]
            if msg["msg_type"] == "stream":
                outputs.append(content["text"])
            elif msg["msg_type"] == "execute_result":
                outputs.append(content["data"]["text/plain"])

        reply = await kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        return {"info": info["content"], "status": reply["content"]["status"], "output": "".join(outputs)}
    finally:
        kc.stop_channels()


def blocker(member: Any, name: str, gpus: int, flavor: str = "silver") -> dict[str, Any]:
    """A plain Kueue-managed pod holding (or waiting for) ``gpus`` of ``flavor`` quota."""
    return member.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": "jupyter",
                "labels": {"kueue.x-k8s.io/queue-name": "kernels"},
            },
            "spec": {
                "restartPolicy": "Never",
                "nodeSelector": {"mlp.io/gpu-tier": flavor},
                "containers": [
                    {
                        "name": "c",
                        "image": "busybox",
                        "command": ["python", "-c", "import time; time.sleep(600)"],
                        "resources": {
                            "requests": {"nvidia.com/gpu": str(gpus)},
                            "limits": {"nvidia.com/gpu": str(gpus)},
                        },
                    }
                ],
            },
        }
    )


def kernel_pods(member: Any, kernel_id: str) -> list[dict[str, Any]]:
    """The kernel's pods that are not being deleted. On the real control plane a deleted kernel pod stays
    visible, with its deletionTimestamp set, until Kueue drops its ``kueue.x-k8s.io/managed`` finalizer (a
    separate, later write: CI once read the pod in between); the delete was accepted all the same."""
    return [
        p
        for p in member.list("v1", "Pod", "jupyter")
        if (p["metadata"].get("labels") or {}).get("mlp.io/kernel-id") == kernel_id
        and not p["metadata"].get("deletionTimestamp")
    ]


def gated(member: Any, name: str) -> bool:
    pod = member.find("v1", "Pod", name, "jupyter")
    return pod is not None and any(
        g.get("name") == "kueue.x-k8s.io/admission" for g in pod["spec"].get("schedulingGates") or []
    )
