"""Nothing outlives a GPU (auto) kernel: shutdown deletes its pod; a killed gateway stops renewing the Lease
and `mlp-kernel gc` deletes the orphan once it expires, while live kernels (running or queued) are kept."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from mlp_kernel.backends.kubernetes.names import lease_name
from tests.gateway.conftest import text_of

from .conftest import E2E_POLICY, alive, kernel_pods, wait_until
from .test_queue_burst import fill_private, queued_with_position

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 4


def gc(tmp_path: Path, kubeconfig: str, *extra: str) -> subprocess.CompletedProcess[str]:
    policy = tmp_path / "gc-policy.yaml"
    policy.write_text(E2E_POLICY)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mlp_kernel.cli",
            "gc",
            "--policy",
            str(policy),
            "--kubeconfig",
            kubeconfig,
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def lease_renewed(member: Any, pod: str) -> str:
    lease = member.get("coordination.k8s.io/v1", "Lease", lease_name(pod), "jupyter")
    return str(lease["spec"]["renewTime"])


async def renewed_for_longer_than_a_lease(member: Any, pod: str) -> None:
    """Wait until the gateway's renewals of ``pod``'s Lease span more than a whole lease period from now.

    Without them the Lease would have expired by then; with them gc must keep the pod. (A fixed sleep of
    several periods proved the same and waited 12 s where this waits 5-6.)
    """
    first = datetime.fromisoformat(lease_renewed(member, pod).replace("Z", "+00:00"))

    def renewed_past_a_period() -> bool:
        last = datetime.fromisoformat(lease_renewed(member, pod).replace("Z", "+00:00"))
        return last - first > timedelta(seconds=LEASE_S + 1)

    await wait_until(renewed_past_a_period, 6 * LEASE_S, step=0.25, seen=lambda: lease_renewed(member, pod))


async def expired(member: Any, pod: str) -> str:
    """Wait until ``pod``'s Lease is a lease period old by the wall clock (gc's test): its renewTime."""
    renewed_at = lease_renewed(member, pod)
    at = datetime.fromisoformat(renewed_at.replace("Z", "+00:00"))
    await wait_until(
        lambda: datetime.now(timezone.utc) - at > timedelta(seconds=LEASE_S + 0.5), 3 * LEASE_S, step=0.25
    )
    return renewed_at


def kernel_objects(member: Any, kernel_id: str) -> list[str]:
    """Pods, Secrets and Leases in jupyter whose metadata mentions ``kernel_id``."""
    found = []
    for api_version, kind in (("v1", "Pod"), ("v1", "Secret"), ("coordination.k8s.io/v1", "Lease")):
        found += [
            f"{kind}/{o['metadata']['name']}"
            for o in member.list(api_version, kind, "jupyter")
            if kernel_id in str(o["metadata"])
        ]
    return found


async def test_shutdown_leaves_no_pod_secret_or_lease(start_kube_kernel, kube_members) -> None:
    private = kube_members.private
    k = await start_kube_kernel()
    reply, outputs = await k.run("print('up')", timeout=120)
    assert reply["content"]["status"] == "ok", text_of(outputs)
    assert len(kernel_pods(private, k.kernel_id)) == 1
    pid = k.gateway_pid
    await k.km.shutdown_kernel(now=False)
    assert not alive(pid)
    await wait_until(
        lambda: not kernel_objects(private, k.kernel_id),
        30,
        seen=lambda: kernel_objects(private, k.kernel_id),
    )
    assert k.record() is None


async def test_killed_gateway_leaves_an_orphan_that_gc_deletes_after_the_lease_expires(
    start_kube_kernel, kube_members, tmp_path
) -> None:
    private = kube_members.private
    k = await start_kube_kernel(kubernetes={"lease_duration_s": LEASE_S})
    reply, outputs = await k.run("print('up')", timeout=120)
    assert reply["content"]["status"] == "ok", text_of(outputs)
    [pod] = kernel_pods(private, k.kernel_id)
    name = pod["metadata"]["name"]

    await renewed_for_longer_than_a_lease(private, name)  # the live gateway keeps renewing
    kept = await asyncio.to_thread(gc, tmp_path, kube_members.kubeconfig_path, "--dry-run")
    assert kept.returncode == 0, kept.stderr
    assert name not in kept.stdout, f"gc would delete a kernel whose gateway is alive: {kept.stdout}"

    os.kill(k.gateway_pid, signal.SIGKILL)
    await wait_until(lambda: not alive(k.gateway_pid), 10)
    assert len(kernel_pods(private, k.kernel_id)) == 1, "nobody released it: the pod is an orphan now"
    renewed_at = await expired(private, name)
    assert lease_renewed(private, name) == renewed_at, "nobody renews the lease of a killed gateway"
    done = await asyncio.to_thread(gc, tmp_path, kube_members.kubeconfig_path)
    assert done.returncode == 0, done.stderr
    assert f"deleting private/jupyter/{name}" in done.stdout and "not renewed" in done.stdout, done.stdout
    assert "1 orphaned kernel pod(s) deleted" in done.stdout, done.stdout
    await wait_until(
        lambda: not kernel_objects(private, k.kernel_id),
        30,
        seen=lambda: kernel_objects(private, k.kernel_id),
    )


async def test_a_queued_kernel_is_not_an_orphan(start_kube_kernel, kube_members, tmp_path) -> None:
    """Queue waits are longer than a lease; a gateway waiting for quota still holds its pod."""
    private = kube_members.private
    fill_private(private, admitted_ago_s=7200)
    k = await start_kube_kernel(kubernetes={"lease_duration_s": LEASE_S})
    outputs: list[dict[str, Any]] = []
    cell = asyncio.ensure_future(k.kc.execute_interactive("1", output_hook=outputs.append, timeout=120))
    await wait_until(lambda: queued_with_position(outputs), 60, seen=lambda: text_of(outputs))
    [pod] = await wait_until(lambda: kernel_pods(private, k.kernel_id), 30)
    await renewed_for_longer_than_a_lease(private, pod["metadata"]["name"])  # queued, and still renewing
    kept = await asyncio.to_thread(gc, tmp_path, kube_members.kubeconfig_path, "--dry-run")
    assert kept.returncode == 0, kept.stderr
    await k.km.interrupt_kernel()
    await asyncio.wait_for(cell, 60)
    assert pod["metadata"]["name"] not in kept.stdout, f"gc would delete a queued kernel: {kept.stdout}"
