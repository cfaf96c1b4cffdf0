"""The Kubernetes warm pool (issue 18 §3) on the real control plane: real API server, Kueue, scheduler, the
process kubelet running the pool pod's kernel.

One pool pod of silver; gateways race to claim it with the resourceVersion-guarded PATCH and exactly one wins
(the others get 409 or find nothing free); the winner's pod carries its kernel id, user and team (the cost
moves from ``platform`` to the user); the claimed kernel, rekeyed over the pool's Secret, runs the user's cell
with the user's key; ``mlp-kernel pool --once`` (the admin's refill loop) sees the claim as demand and
creates a replacement.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from jupyter_client import BlockingKernelClient

from mlp_kernel.backends.kubernetes import names
from mlp_kernel.backends.kubernetes.leases import find_orphans
from mlp_kernel.backends.kubernetes.pool import (
    CLAIMED,
    POOL,
    POOL_STATE,
    claim,
    is_ready,
    pool_connection,
    pool_pods,
    refill,
)
from mlp_kernel.backends.rekey import rekey
from mlp_kernel.placement.policy_load import parse_policy
from tests.backend_kubernetes.conftest import free_ports
from tests.backend_kubernetes.policies import KERNELSPEC, TEST_MEMBERS_POLICY

pytestmark = pytest.mark.timeout(300)
SILVER = "silver: {member: private, tier: silver, gpu_models: [V100], node_labels: {mlp.io/gpu-tier: silver},"
POLICY_TEXT = TEST_MEMBERS_POLICY.replace(SILVER, SILVER + " warm_pool: 1, warm_pool_idle: 10m,")
POLICY = parse_policy(POLICY_TEXT)


def run_cell(conn: dict, key: str, code: str) -> str:
    c = BlockingKernelClient()
    c.load_connection_info({**conn, "key": key})
    c.start_channels()
    out: list[str] = []
    try:
        reply = c.execute_interactive(
            code, timeout=30, output_hook=lambda m: out.append(m["content"].get("text", ""))
        )
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(out)
    finally:
        c.stop_channels()


async def ready_pool_pod(api, timeout: float = 120.0) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        pods = await pool_pods(api, "jupyter", "silver")
        if pods and is_ready(pods[0]):
            return pods[0]
        await asyncio.sleep(0.5)
    raise AssertionError(f"no ready pool pod in {timeout:g} s: {pods}")


async def test_racing_gateways_claim_the_pool_pod_once_it_runs_the_users_cell_and_is_refilled(
    kube_members, tmp_path
):
    assert POLICY.flavors["silver"].warm_pool == 1
    api = kube_members.private.api_client()
    assert await refill(api, KERNELSPEC, POLICY, "silver", ports=free_ports()) == {"deleted": 0, "created": 1}
    pod = await ready_pool_pod(api)
    labels = pod["metadata"]["labels"]
    assert labels[names.TEAM] == "platform" and labels[names.USER] == "platform", "the platform's cost"
    assert labels[names.QUEUE_NAME] == "kernels" and labels[POOL] == "silver"
    assert await refill(api, KERNELSPEC, POLICY, "silver") == {"deleted": 0, "created": 0}, "the pool is full"

    clients = [kube_members.private.api_client() for _ in range(6)]
    results = await asyncio.gather(
        *(claim(c, "jupyter", "silver", f"kernel-{i}", f"user{i}", "ml") for i, c in enumerate(clients))
    )
    winners = [(i, r) for i, r in enumerate(results) if r is not None]
    assert len(winners) == 1, [r and r["metadata"]["labels"] for r in results]
    i, won = winners[0]
    assert won["metadata"]["name"] == pod["metadata"]["name"]
    got = won["metadata"]["labels"]
    assert (got[POOL_STATE], got[names.KERNEL_ID], got[names.USER], got[names.TEAM]) == (
        CLAIMED, f"kernel-{i}", f"user{i}", "ml"
    )  # fmt: skip
    assert await pool_pods(api, "jupyter", "silver") == [], "a claimed pod is nobody else's"

    conn = {**await pool_connection(api, won), "ip": won["status"]["podIP"]}
    user_key = secrets.token_hex(32)
    await asyncio.to_thread(rekey, conn, {"key": user_key}, 15.0)
    assert run_cell(conn, user_key, "print(6 * 7)").strip() == "42"

    # the admin's loop sees the claim as demand (a kernel of silver started within warm_pool_idle) and refills
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY_TEXT)
    argv = ["pool", "--once", "--policy", str(policy_file), "--kubeconfig", kube_members.kubeconfig_path]
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "mlp_kernel.cli", *argv, "--kernelspec", str(KERNELSPEC)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "silver: 1 created, 0 idle deleted" in out.stdout, out.stdout + out.stderr
    (replacement,) = await pool_pods(api, "jupyter", "silver")
    assert replacement["metadata"]["name"] != won["metadata"]["name"]
    assert replacement["metadata"]["labels"][names.TEAM] == "platform"

    # gc leaves the free pool pod alone (it has no gateway and no Lease by design: the pool loop ends it) but
    # lists the claimed one, whose claimer holds no Lease in this test
    orphans = await find_orphans(api, "private", "jupyter", datetime.now(timezone.utc), expire_after_s=0)
    listed = {o.pod for o in orphans}
    assert won["metadata"]["name"] in listed and replacement["metadata"]["name"] not in listed, listed
