"""The Kubernetes warm pool (issue 18 §3) on the real control plane: real API server, Kueue, scheduler, the
process kubelet running the pool pod's kernel.

One pool pod of silver; gateways race to claim it with the resourceVersion-guarded PATCH and exactly one wins
(the others get 409 or find nothing free); the winner's pod carries its kernel id, user and team (the cost
moves from ``platform`` to the user); the claimed kernel, rekeyed over the pool's Secret, runs the user's cell
with the user's key; ``mlp-kernel pool --once`` (the admin's refill loop) sees the claim as demand and
creates a replacement. Then the gateway's side: a launch through ``KubernetesBackend`` whose request fits the
pool claims the ready pool pod (the user's labels, a Lease, the user's key), its release deletes it, and the
next launch, with the pool empty, creates a pod as usual. Pool pods carry the warm pool's Kueue priority class
(docs/samples/pool/priority-class.yaml, applied as shipped).
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from jupyter_client import BlockingKernelClient

from mlp_kernel.backends.base import ExitReason, LaunchSpec, Phase
from mlp_kernel.backends.kubernetes import names
from mlp_kernel.backends.kubernetes.leases import find_orphans
from mlp_kernel.backends.kubernetes.pool import (
    CLAIMED,
    POOL,
    POOL_STATE,
    PRIORITY_CLASS,
    claim,
    is_ready,
    pool_connection,
    pool_pods,
    refill,
)
from mlp_kernel.backends.rekey import rekey
from mlp_kernel.placement.policy_load import parse_policy
from mlp_kernel.placement.types import Action, Decision, GpuRequest
from tests.backend_kubernetes.conftest import free_ports, make_backend
from tests.backend_kubernetes.e2e import KEY, execute, launch_all
from tests.backend_kubernetes.policies import KERNELSPEC, TEST_MEMBERS_POLICY

pytestmark = pytest.mark.timeout(300)
PRIORITY_SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "samples" / "pool" / "priority-class.yaml"
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
    kube_members.private.apply_yaml(PRIORITY_SAMPLE)
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


def warm_spec(kernel_id: str) -> LaunchSpec:
    """A launch of one silver GPU, nothing else asked: the pool pod's size."""
    decision = Decision(
        action=Action.RUN,
        member="private",
        flavor="silver",
        local_queue="kernels",
        namespace="jupyter",
        gpu_count=1,
    )
    request = GpuRequest(gpu_count=1)
    return LaunchSpec(kernel_id, KEY, "hmac-sha256", decision, request, user="alice", team="ml")


async def test_a_launch_claims_the_ready_pool_pod_and_with_the_pool_empty_creates_a_pod(kube_members):
    m = kube_members.private
    m.apply_yaml(PRIORITY_SAMPLE)
    api = m.api_client()
    assert await refill(api, KERNELSPEC, POLICY, "silver", ports=free_ports()) == {"deleted": 0, "created": 1}
    pod = await ready_pool_pod(api)
    name = pod["metadata"]["name"]
    workload = m.workload_for("jupyter", name)
    assert workload is not None, "Kueue made the pool pod's Workload (its priority class exists)"
    assert (workload["spec"].get("priorityClassRef") or {}).get("name") == PRIORITY_CLASS, workload["spec"]
    assert workload["spec"].get("priority") == -100, "below users' kernels (priority 0): Kueue preempts it"

    backend = make_backend(kube_members, POLICY)  # plain clients: the fresh pod below has no CurveZMQ
    try:
        started = time.monotonic()
        events = await launch_all(backend, warm_spec("warm-1"))
        took = time.monotonic() - started
        assert [e.phase for e in events] == [Phase.CONNECTED], [e.message for e in events]
        assert "warm pool, silver" in events[0].message and events[0].detail["warm_pool"] is True
        remote = events[0].remote
        assert remote is not None and remote.handle["pod"] == name, "the pool pod, not a new one"
        assert remote.handle["warm_pool"] is True, "the gateway's start-up line says 'warm pool'"
        assert took < 10, f"a claim is one PATCH and one silent execute, took {took:.1f} s"
        print(f"warm-pool claim to connected: {took:.3f} s")  # docs/benchmarks.md quotes it (pytest -s)

        claimed = m.get("v1", "Pod", name, "jupyter")
        labels, annotations = claimed["metadata"]["labels"], claimed["metadata"]["annotations"]
        assert (labels[POOL_STATE], labels[names.KERNEL_ID], labels[names.USER], labels[names.TEAM]) == (
            CLAIMED, "warm-1", "alice", "ml"
        )  # fmt: skip
        assert annotations[names.GATEWAY_ANNOTATION] == backend.gateway_id
        lease = m.get("coordination.k8s.io/v1", "Lease", remote.handle["lease"], "jupyter")
        assert lease["spec"]["holderIdentity"] == backend.gateway_id
        assert lease["metadata"]["ownerReferences"][0]["uid"] == claimed["metadata"]["uid"]
        orphans = await find_orphans(api, "private", "jupyter", datetime.now(timezone.utc))
        assert name not in {o.pod for o in orphans}, "its Lease is fresh: gc leaves it alone"

        # the user's cell runs with the user's key, over the RemoteKernel's address, encrypted with the pool
        # pod's CurveZMQ keypair (its public key is in the handle, as for a fresh pod)
        conn = await pool_connection(api, claimed)
        assert remote.handle["curve_publickey"] == conn["curve_publickey"]
        ports = {
            f"{ch}_port": getattr(remote, f"{ch}_port") for ch in ("shell", "iopub", "stdin", "control", "hb")
        }
        where = {**conn, **ports, "ip": remote.ip}
        assert run_cell(where, KEY, "import os; print(os.environ['MLP_KERNEL_ID'], 6 * 7)").split() == [
            "warm-1", "42"
        ]  # fmt: skip

        exited = asyncio.ensure_future(backend.wait_exit(remote))
        await backend.release(remote)
        assert (await asyncio.wait_for(exited, 60)).reason == ExitReason.RELEASED
        m.wait_for(lambda: m.find("v1", "Pod", name, "jupyter") is None, 60, what="the claimed pod deleted")
        assert m.find("coordination.k8s.io/v1", "Lease", remote.handle["lease"], "jupyter") is None

        # the pool is empty now (nobody refilled it): the next launch creates its pod
        events = await launch_all(backend, warm_spec("cold-1"))
        assert events[-1].phase == Phase.CONNECTED and len(events) > 1, [e.message for e in events]
        cold = events[-1].remote
        assert cold is not None and "warm pool" not in events[-1].message and "warm_pool" not in cold.handle
        assert cold.handle["pod"].startswith("mlpk-") and cold.handle["pod"] != name
        assert POOL not in m.get("v1", "Pod", cold.handle["pod"], "jupyter")["metadata"]["labels"]
        assert (await execute(cold, "print(6 * 7)"))["output"].strip() == "42"
        await backend.release(cold)
    finally:
        backend.close()
