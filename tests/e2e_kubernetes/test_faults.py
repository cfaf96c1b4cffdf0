"""A flaky API server during launch: 500s on the placement read and on every create are retried or fall back,
the kernel starts, and exactly one pod exists."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import text_of

from .conftest import all_kernel_pods, kernel_pods

pytestmark = pytest.mark.timeout(180)


async def test_500s_during_launch_still_start_the_kernel_with_exactly_one_pod(
    start_kube_kernel, kube_members
) -> None:
    private = kube_members.private
    k = await start_kube_kernel()
    private.faults.fail_next(1, path=r"/clusterqueues", method="GET")  # placement's live read
    private.faults.fail_next(2, path=r"/namespaces/jupyter/pods$", method="POST")
    private.faults.fail_next(2, path=r"/secrets$", method="POST", code=503, reason="ServiceUnavailable")
    private.faults.fail_next(1, path=r"/leases$", method="POST")
    reply, outputs = await k.run("%gpu tier=silver\nprint('started', 6 * 7)", timeout=150)
    text = text_of(outputs)
    assert reply["content"]["status"] == "ok" and "started 42" in text, text
    fired = [(method, path) for kind, method, path in private.faults.fired if kind == "error"]
    assert sum(1 for m, p in fired if m == "POST") == 5, fired
    assert any("clusterqueues" in p for _, p in fired), fired
    assert len(kernel_pods(private, k.kernel_id)) == 1
    assert len(all_kernel_pods(kube_members)) == 1, "no second pod, not even one being deleted"
    reply, outputs = await k.run("print('still', 1 + 1)")
    assert "still 2" in text_of(outputs)
