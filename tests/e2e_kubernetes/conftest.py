"""Fixtures: a real GPU (auto) kernel (provisioner + gateway + Kubernetes backend) on the test members.

The kernelspec is the shipped ``kernelspecs/gpu-auto`` with the test members' policy (short burst threshold)
and ``kubernetes`` options pointing at ``kube_members``' kubeconfig; the gateway runs as a real process
started by ``AsyncKernelManager``, the remote kernels as real pods the test kubelet runs on this host.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.backend_kubernetes.conftest import free_ports
from tests.backend_kubernetes.e2e import kernel_pods  # noqa: F401 (the e2e tests import it from here)
from tests.backend_kubernetes.policies import TEST_MEMBERS_POLICY
from tests.gateway.conftest import Kernel, launch, make_kernelspec, runtime_dir, shutdown_all  # noqa: F401
from tests.kubeapi.fixtures import *  # noqa: F401,F403
from tests.kubeapi.members import KubeMembers

BURST_THRESHOLD_S = 12

#: The backend tests' members policy, plus a burst rule that is due after 12 s of queueing.
E2E_POLICY = (
    TEST_MEMBERS_POLICY
    + f"""
burst: {{enabled: true, threshold: {BURST_THRESHOLD_S}s, deadline_horizon: 2m}}
idle_timeout: 15m
launch_timeout: 3m
"""
)


def all_kernel_pods(kube_members: KubeMembers) -> list[dict[str, Any]]:
    """Every kernel pod (managed by mlp-kernel) on both members, deleting or not."""
    return [
        p
        for m in (kube_members.private, kube_members.public)
        for p in m.list("v1", "Pod", "jupyter")
        if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") == "mlp-kernel"
    ]


async def wait_until(
    predicate: Callable[[], Any], timeout: float = 60.0, step: float = 0.2, seen: Callable[[], Any] = str
) -> Any:
    """Poll ``predicate`` until truthy (returned), or fail saying what was awaited and ``seen()``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(step)
    value = predicate()
    what = getattr(predicate, "__name__", predicate)
    assert value, f"timed out after {timeout} s waiting for {what}; seen: {seen()}"
    return value


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
async def start_kube_kernel(
    tmp_path: Path,
    runtime_dir: Path,  # noqa: F811
    kube_members: KubeMembers,  # noqa: F811
) -> AsyncIterator[Callable[..., Any]]:
    """``await start(defaults={...}, kubernetes={...}, **config)`` -> a started GPU (auto) ``Kernel``.

    Every kernel is shut down at the end, and the test fails if a kernel pod is left on either member.
    """
    started: list[Kernel] = []

    async def start(
        policy: str = E2E_POLICY, kubernetes: dict[str, Any] | None = None, **config: Any
    ) -> Kernel:
        name = f"gpu-auto-kube-{len(started)}"
        options: dict[str, Any] = {
            "kubeconfig": kube_members.kubeconfig_path,
            "ports": free_ports(),
            "tick_s": 0.2,
            "queue_refresh_s": 0.5,
            "timeouts": {"queued_s": 180, "scheduling_s": 60, "pulling_s": 60, "connecting_s": 60},
        }
        options.update(kubernetes or {})
        config.setdefault("reevaluate_s", 0.5)  # a queued kernel bursts within 0.5 s of the threshold, not 5
        make_kernelspec(tmp_path, name, policy, kubernetes=options, log_level="INFO", **config)
        k = await launch(tmp_path, name, runtime_dir)
        started.append(k)
        return k

    yield start
    await shutdown_all(started)

    def no_kernel_pod_left() -> bool:
        return not all_kernel_pods(kube_members)

    await wait_until(no_kernel_pod_left, 30)


SNAPSHOT_CLAIM = "mlp-snapshots"


def volume_policy(member: Any, claim: str = SNAPSHOT_CLAIM, gateway_sees_volume: bool = False) -> str:
    """``E2E_POLICY`` with snapshots on the per-user volume ``claim`` of the private member.

    The mount path is a view path of ``member``'s test kubelet (``tests/kubeapi/controllers/claims.py``): the
    gateway sends it to the kernel inside an execute_request, so the kernel process must be able to open the
    in-pod path itself, which it can while its pod mounts the claim there. ``gateway_sees_volume``: the
    gateway also sees the claim (``gateway_path``), as a notebook server mounting the user's RWX home does.
    """
    path = member.kubelet.claims.view_path("/home/jovyan/.mlp-kernel/snapshots")
    view = ""
    if gateway_sees_volume:  # the notebook server mounts the same RWX volume (call after create_claim)
        view = f', gateway_path: "{member.kubelet.claims.directory("jupyter", claim)}"'
    return (
        E2E_POLICY
        + f"""
data_classes: {{known: [public, internal, sensitive], keep_private: [sensitive]}}
snapshot:
  storage: {{kind: volume, claim: {claim}, path: "{path}"{view}}}
"""
    )


def create_claim(member: Any, name: str = SNAPSHOT_CLAIM, namespace: str = "jupyter") -> dict[str, Any]:
    """A ReadWriteMany claim, as the platform's per-user home volume (bound at once by the test API)."""
    return member.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "10Gi"}}},
        }
    )


def snapshot_dirs(member: Any, kernel_id: str, claim: str = SNAPSHOT_CLAIM) -> list[Path]:
    """``<claim>/<user>/<kernel_id>`` directories of ``kernel_id`` on the claim's host directory."""
    root = member.kubelet.claims.directory("jupyter", claim)
    return sorted(root.glob(f"*/{kernel_id}")) if root.is_dir() else []
