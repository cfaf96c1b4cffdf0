"""A full private member: the cell shows its queue position; with burst=on budget=flex it moves to the public
member after the burst threshold (saying why and at what price), with budget=fixed it stays queued until the
user interrupts, and the interrupt withdraws the queued pod."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from jupyter_client.asynchronous.client import AsyncKernelClient

from tests.backend_kubernetes.e2e import blocker
from tests.gateway.conftest import text_of

from .conftest import BURST_THRESHOLD_S, kernel_pods, wait_until

pytestmark = pytest.mark.timeout(240)


def fill_private(private: Any, admitted_ago_s: float = 0) -> None:
    """Take all 8 private GPUs (bronze and silver) with running pods that are not ours.

    ``admitted_ago_s`` backdates their admission: long-running jobs, so no admission was observed in the
    placement's rate window and the expected wait is a low-confidence guess that never bursts by itself.
    """
    workloads = private.rtype("kueue.x-k8s.io/v1beta2", "Workload")
    at = (datetime.now(timezone.utc) - timedelta(seconds=admitted_ago_s)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def backdate(w: dict[str, Any]) -> None:
        for cond in w["status"]["conditions"]:
            cond["lastTransitionTime"] = at

    for flavor in ("bronze", "silver"):
        blocker(private, f"blocker-{flavor}", 4, flavor=flavor)
        private.wait_for_pod_phase("jupyter", f"blocker-{flavor}", "Running")
        if admitted_ago_s:
            wl = private.workload_for("jupyter", f"blocker-{flavor}")
            assert private.store.mutate(workloads, "jupyter", wl["metadata"]["name"], backdate)


def queued_with_position(outputs: list[dict[str, Any]]) -> str:
    """The cell's text once the backend reports the live Kueue position (not just placement's estimate)."""
    text = text_of(outputs)
    return text if re.search(r"Queued for \w+ \(LocalQueue kernels\), position \d+", text) else ""


async def test_full_private_queues_then_bursts_to_public_with_reason_and_price(
    start_kube_kernel, kube_members
) -> None:
    private, public = kube_members.private, kube_members.public
    fill_private(private, admitted_ago_s=7200)
    k = await start_kube_kernel(defaults={"burst": "on", "budget": "flex"})
    outputs: list[dict[str, Any]] = []
    cell = asyncio.ensure_future(
        k.kc.execute_interactive("print('ran on', 6 * 7)", output_hook=outputs.append, timeout=200)
    )
    await wait_until(lambda: queued_with_position(outputs), 60, seen=lambda: text_of(outputs))
    [queued_pod] = await wait_until(lambda: kernel_pods(private, k.kernel_id), 30)
    assert queued_pod["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "kernels"
    assert "will burst to" in text_of(outputs), text_of(outputs)

    reply = await cell
    text = text_of(outputs)
    assert reply["content"]["status"] == "ok", text
    assert "ran on 42" in text
    assert "Burst to public/gold" in text and "$4.10/h" in text, text
    assert f"threshold {BURST_THRESHOLD_S} s" in text, text  # why: waited longer than the threshold
    assert "Running on public/gold" in text and "public" in text, text
    assert kernel_pods(private, k.kernel_id) == [], "the queued private pod is withdrawn"
    [pod] = kernel_pods(public, k.kernel_id)
    assert pod["spec"]["nodeName"] == "public-gold-1"
    assert k.record()["member"] == "public"
    _, outputs = await k.run("%gpu")
    status = text_of(outputs)
    assert "where:  public / gold (public), GPU A100 x1" in status and "$4.10/h" in status, status


async def test_budget_fixed_stays_queued_saying_why_and_interrupt_withdraws(
    start_kube_kernel, kube_members
) -> None:
    private = kube_members.private
    fill_private(private, admitted_ago_s=7200)
    k = await start_kube_kernel(defaults={"burst": "on", "budget": "fixed"})
    outputs: list[dict[str, Any]] = []
    cell = asyncio.ensure_future(
        k.kc.execute_interactive("print('never')", output_hook=outputs.append, timeout=200)
    )
    await wait_until(lambda: queued_with_position(outputs), 60, seen=lambda: text_of(outputs))
    # Past the threshold and several re-evaluations (every 0.5 s here): flex would have moved by now.
    await asyncio.sleep(BURST_THRESHOLD_S + 2)
    # A second frontend with its own session (a shared Session rejects the other's iopub copies as replays).
    other = AsyncKernelClient()
    other.load_connection_info(k.km.get_connection_info())
    other.start_channels()
    try:
        status: list[dict[str, Any]] = []
        await other.execute_interactive("%gpu", output_hook=status.append, timeout=30)  # while the cell waits
    finally:
        other.stop_channels()
    assert "GPU (auto): queued" in text_of(status) and "position" in text_of(status), text_of(status)
    text = text_of(outputs)
    assert "burst not allowed: budget=fixed" in text and "%gpu budget=flex" in text, text
    assert "Burst to" not in text and not cell.done(), text
    assert len(kernel_pods(private, k.kernel_id)) == 1
    assert kernel_pods(kube_members.public, k.kernel_id) == []

    await k.km.interrupt_kernel()
    reply = await asyncio.wait_for(cell, 60)
    text = text_of(outputs)
    assert reply["content"]["status"] == "error" and "Interrupted" in text, text
    assert "never" not in text, "the cell's code never ran"
    await wait_until(lambda: not kernel_pods(private, k.kernel_id), 30)
    assert [s for s in private.list("v1", "Secret", "jupyter") if k.kernel_id in str(s["metadata"])] == []


async def test_an_observed_long_private_wait_bursts_at_once(start_kube_kernel, kube_members) -> None:
    """Jobs were just admitted (an observed rate): the expected wait beats the threshold; no private queue."""
    private = kube_members.private
    fill_private(private)
    k = await start_kube_kernel(defaults={"burst": "on", "budget": "flex"})
    reply, outputs = await k.run("print('ran on', 6 * 7)", timeout=150)
    text = text_of(outputs)
    assert reply["content"]["status"] == "ok" and "ran on 42" in text, text
    assert "Burst to public/gold (A100 x1) now at $4.10/h: expected private wait" in text, text
    assert "Queued on private" not in text and "will burst" not in text, text  # (gold may queue briefly)
    assert kernel_pods(private, k.kernel_id) == []
    assert len(kernel_pods(kube_members.public, k.kernel_id)) == 1
    _, outputs = await k.run("%gpu explain")
    assert "expected private wait" in text_of(outputs) and "burst" in text_of(outputs), text_of(outputs)
