"""A cell on a notebook whose private member has free silver quota runs there, in a real pod."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import text_of

from .conftest import kernel_pods

pytestmark = pytest.mark.timeout(180)


async def test_free_silver_quota_runs_the_cell_in_a_private_pod(start_kube_kernel, kube_members) -> None:
    k = await start_kube_kernel()
    reply, outputs = await k.run("%gpu tier=silver\nx = 6 * 7\nprint('answer', x)", timeout=120)
    text = text_of(outputs)
    assert reply["content"]["status"] == "ok", text
    assert "answer 42" in text
    assert "[GPU (auto)]" in text and "Running on private/silver" in text, text

    [pod] = kernel_pods(kube_members.private, k.kernel_id)
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "kernels"
    assert pod["spec"]["nodeSelector"]["mlp.io/gpu-tier"] == "silver"
    assert pod["spec"]["nodeName"] == "private-silver-1"
    assert kernel_pods(kube_members.public, k.kernel_id) == []
    record = k.record()
    assert record and record["pod"] == pod["metadata"]["name"] and record["member"] == "private"

    reply, outputs = await k.run("%gpu")
    status = text_of(outputs)
    assert "GPU (auto): running" in status, status
    assert "where:  private / silver (private), GPU V100 x1" in status, status

    reply, outputs = await k.run("x + 1")
    results = [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"]
    assert results == ["43"]
    assert [p["metadata"]["name"] for p in kernel_pods(kube_members.private, k.kernel_id)] == [
        pod["metadata"]["name"]
    ], "later cells run in the same pod"
