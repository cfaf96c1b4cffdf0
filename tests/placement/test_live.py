"""Reading placement state from live clusters through the official ``kubernetes`` client.

Runs against the in-repo test Kubernetes API (tests/kubeapi): a private and a public member with Kueue, and a
Karmada plane whose Cluster objects say which member is Ready. Nothing above the HTTP boundary is faked.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from kubernetes import client

from mlp_kernel.placement import Action, GpuRequest, decide, parse_policy
from mlp_kernel.placement.adapters import astate_from_cluster, state_from_cluster
from tests.kubeapi.builders import python_pod

POLICY = parse_policy("""
tiers: [bronze, silver, gold]
members:
  private: {namespace: jupyter, local_queue: kernels, karmada_cluster: private}
  public: {public: true, namespace: jupyter, local_queue: kernels, cluster_queue: gpu-public,
           karmada_cluster: public, display_name: AWS}
flavors:
  bronze: {member: private, tier: bronze, gpu_models: [T4], node_labels: {mlp.io/gpu-tier: bronze},
           price_per_gpu_hour: 0}
  silver: {member: private, tier: silver, gpu_models: [V100], node_labels: {mlp.io/gpu-tier: silver},
           price_per_gpu_hour: 0}
  gold: {member: public, tier: gold, gpu_models: [A100], node_labels: {mlp.io/gpu-tier: gold},
         price_per_gpu_hour: 4.1}
""")
FLEX = {"burstable": True, "budget": "flex"}


def clients(kube_members: Any) -> dict[str, Any]:
    return {"private": kube_members.private.api_client(), "public": kube_members.public.api_client()}


def read(kube_members: Any) -> Any:
    return state_from_cluster(
        POLICY,
        clients(kube_members),
        karmada=kube_members.karmada.api_client(),
        now=datetime.now(timezone.utc),
    )


def test_quota_and_health_come_from_the_clusters(kube_members: Any) -> None:
    state = read(kube_members)
    private, public = state.members["private"], state.members["public"]
    assert private.ready and private.cluster_queue_active and private.source == "live"
    assert (private.flavors["bronze"].nominal_gpus, private.flavors["bronze"].used_gpus) == (4, 0)
    assert public.flavors["gold"].nominal_gpus == 8
    d = decide(POLICY, state, GpuRequest(), datetime.now(timezone.utc))
    assert (d.action, d.flavor) == (Action.RUN, "bronze")


def fill_bronze_and_queue_one(private: Any) -> None:
    """Bronze's 4 GPUs taken by a running pod ("big"), and a 1-GPU pod ("next") created behind it: the
    scenario the live adapter, the watch cache and the queue summary are each checked against."""
    core = client.CoreV1Api(private.api_client())
    pin = {"mlp.io/gpu-tier": "bronze"}
    core.create_namespaced_pod("jupyter", python_pod("big", queue="kernels", gpus=4, node_selector=pin))
    private.wait_for_pod_phase("jupyter", "big", "Running")
    core.create_namespaced_pod("jupyter", python_pod("next", queue="kernels", gpus=1, node_selector=pin))


def test_admitted_and_pending_pods_fill_the_flavor_and_queue_the_next(kube_members: Any) -> None:
    private = kube_members.private
    fill_bronze_and_queue_one(private)
    private.wait_for(
        lambda: read(kube_members).members["private"].flavors["bronze"].pending == 1,
        what="one pending workload",
    )
    bronze = read(kube_members).members["private"].flavors["bronze"]
    assert (bronze.used_gpus, bronze.free_gpus) == (4, 0)
    assert bronze.admission_rate_per_s is not None and bronze.admission_rate_per_s > 0
    d = decide(POLICY, read(kube_members), GpuRequest(gpu_model="t4", **FLEX), datetime.now(timezone.utc))
    assert d.action is Action.QUEUE and d.flavor == "bronze" and "position 2" in d.summary


def test_karmada_not_ready_takes_the_public_member_out(kube_members: Any) -> None:
    kube_members.karmada.set_member_ready("public", False)
    state = read(kube_members)
    assert not state.members["public"].ready
    d = decide(POLICY, state, GpuRequest(gpu_model="A100", **FLEX), datetime.now(timezone.utc))
    assert d.action is Action.REJECT and "AWS is unavailable" in d.summary


def test_stopped_cluster_queue_is_inactive(kube_members: Any) -> None:
    custom = client.CustomObjectsApi(kube_members.private.api_client())
    custom.patch_cluster_custom_object(
        "kueue.x-k8s.io", "v1beta2", "clusterqueues", "gpu-private", {"spec": {"stopPolicy": "Hold"}}
    )
    private = read(kube_members).members["private"]
    assert not private.cluster_queue_active and "stopPolicy Hold" in private.reason


def test_an_unreachable_member_is_not_ready_instead_of_failing(kube_members: Any) -> None:
    api = clients(kube_members)
    kube_members.public.stop()
    state = state_from_cluster(POLICY, api, now=datetime.now(timezone.utc))
    assert not state.members["public"].ready and "cannot read Kueue objects" in state.members["public"].reason
    assert state.members["private"].ready


async def test_async_variant_reads_the_same_state(kube_members: Any) -> None:
    state = await astate_from_cluster(POLICY, clients(kube_members), now=datetime.now(timezone.utc))
    assert state.members["private"].flavors["silver"].nominal_gpus == 4


def test_queue_positions_come_from_the_visibility_api(kube_members: Any) -> None:
    from mlp_kernel.placement.adapters.live import _read_member

    private = kube_members.private
    core = client.CoreV1Api(private.api_client())
    pin = {"mlp.io/gpu-tier": "silver"}
    core.create_namespaced_pod("jupyter", python_pod("all", queue="kernels", gpus=4, node_selector=pin))
    private.wait_for_pod_phase("jupyter", "all", "Running")
    core.create_namespaced_pod("jupyter", python_pod("waiting", queue="kernels", gpus=1, node_selector=pin))

    def summary() -> Any:
        objs = _read_member(private.api_client(), POLICY.members["private"])
        found = [o for o in objs if o["kind"] == "PendingWorkloadsSummary"]
        return found if found and found[0].get("items") else None

    (found,) = private.wait_for(summary, what="a pending workload in the visibility API")
    assert found["items"][0]["localQueueName"] == "kernels"
    own = found["items"][0]["metadata"]["name"]
    state = state_from_cluster(
        POLICY, clients(kube_members), now=datetime.now(timezone.utc), own_workload=own
    )
    assert state.members["private"].flavors["silver"].queue_position == 1
