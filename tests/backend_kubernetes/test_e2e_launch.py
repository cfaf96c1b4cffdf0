"""End to end against the test members: a real pod runs a real ipykernel we talk to over its ports."""

from __future__ import annotations

import pytest

from mlp_kernel.backends.base import Phase

from .e2e import execute, launch_all, spec

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
