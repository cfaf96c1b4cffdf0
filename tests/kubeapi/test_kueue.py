"""Kueue plain-pod integration: gating, Workloads, flavors, quota, cohorts, stop, preemption, visibility."""

from __future__ import annotations

import pytest
from kubernetes import client

from .builders import python_pod

G, V = "kueue.x-k8s.io", "v1beta2"
GOLD_TOLERATION = {"key": "mlp.io/gpu-tier", "operator": "Equal", "value": "gold", "effect": "NoSchedule"}


@pytest.fixture
def private(kube_members):
    return kube_members.private


@pytest.fixture
def core(private):
    return client.CoreV1Api(private.api_client())


@pytest.fixture
def custom(private):
    return client.CustomObjectsApi(private.api_client())


def _workload(custom, pod_uid: str) -> dict:
    items = custom.list_namespaced_custom_object(
        G, V, "jupyter", "workloads", label_selector=f"kueue.x-k8s.io/job-uid={pod_uid}"
    )["items"]
    assert len(items) == 1
    return items[0]


def _cond(obj: dict, ctype: str) -> dict | None:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == ctype), None)


def _wait_workload_cond(member, custom, uid: str, ctype: str, status: str) -> dict:
    def check():
        items = custom.list_namespaced_custom_object(
            G, V, "jupyter", "workloads", label_selector=f"kueue.x-k8s.io/job-uid={uid}"
        )["items"]
        if items and (_cond(items[0], ctype) or {}).get("status") == status:
            return items[0]
        return None

    return member.wait_for(check, what=f"workload condition {ctype}={status}")


def test_queued_pod_is_gated_labelled_and_finalized(core):
    pod = core.create_namespaced_pod("jupyter", python_pod("k", queue="kernels", gpus=1))
    assert [g.name for g in pod.spec.scheduling_gates] == ["kueue.x-k8s.io/admission"]
    assert pod.metadata.labels["kueue.x-k8s.io/managed"] == "true"
    assert pod.metadata.finalizers == ["kueue.x-k8s.io/managed"]


def test_workload_is_named_labelled_and_admitted_into_first_flavor(private, core, custom):
    pod = core.create_namespaced_pod("jupyter", python_pod("k", queue="kernels", gpus=1))
    wl = _wait_workload_cond(private, custom, pod.metadata.uid, "Admitted", "True")
    assert wl["metadata"]["name"].startswith("pod-k-") and len(wl["metadata"]["name"]) == len("pod-k-") + 5
    assert wl["status"]["admission"]["clusterQueue"] == "gpu-private"
    assert wl["status"]["admission"]["podSetAssignments"][0]["flavors"] == {"nvidia.com/gpu": "bronze"}
    private.wait_for_pod_phase("jupyter", "k", "Running")
    admitted = core.read_namespaced_pod("k", "jupyter")
    assert admitted.spec.node_selector == {"mlp.io/gpu-tier": "bronze"}
    assert not admitted.spec.scheduling_gates
    assert admitted.spec.node_name == "private-bronze-1"


def test_node_selector_pins_the_flavor(private, core, custom):
    pod = core.create_namespaced_pod(
        "jupyter", python_pod("k", queue="kernels", gpus=1, node_selector={"mlp.io/gpu-tier": "silver"})
    )
    wl = _wait_workload_cond(private, custom, pod.metadata.uid, "Admitted", "True")
    assert wl["status"]["admission"]["podSetAssignments"][0]["flavors"]["nvidia.com/gpu"] == "silver"


def test_full_queue_leaves_workload_waiting_for_quota_until_quota_is_freed(private, core, custom):
    first = core.create_namespaced_pod(
        "jupyter", python_pod("big", queue="kernels", gpus=4, node_selector={"mlp.io/gpu-tier": "silver"})
    )
    _wait_workload_cond(private, custom, first.metadata.uid, "Admitted", "True")
    second = core.create_namespaced_pod(
        "jupyter", python_pod("next", queue="kernels", gpus=1, node_selector={"mlp.io/gpu-tier": "silver"})
    )
    waiting = _wait_workload_cond(private, custom, second.metadata.uid, "QuotaReserved", "False")
    assert _cond(waiting, "QuotaReserved")["reason"] == "WaitingForQuota"
    assert (
        "insufficient unused quota for nvidia.com/gpu in flavor silver"
        in _cond(waiting, "QuotaReserved")["message"]
    )
    cq = custom.get_cluster_custom_object(G, V, "clusterqueues", "gpu-private")
    assert cq["status"]["pendingWorkloads"] == 1 and cq["status"]["admittedWorkloads"] == 1
    silver = next(f for f in cq["status"]["flavorsUsage"] if f["name"] == "silver")
    assert {r["name"]: r["total"] for r in silver["resources"]}["nvidia.com/gpu"] == "4"
    core.delete_namespaced_pod("big", "jupyter")
    _wait_workload_cond(private, custom, second.metadata.uid, "Admitted", "True")


def test_finished_pod_frees_quota(private, core, custom):
    done = core.create_namespaced_pod(
        "jupyter",
        python_pod("short", "print(1)", queue="kernels", gpus=4, node_selector={"mlp.io/gpu-tier": "silver"}),
    )
    wl = _wait_workload_cond(private, custom, done.metadata.uid, "Finished", "True")
    assert _cond(wl, "Finished")["reason"] == "Succeeded"
    pod = core.read_namespaced_pod("short", "jupyter")
    assert pod.metadata.finalizers in (None, [])
    later = core.create_namespaced_pod(
        "jupyter", python_pod("later", queue="kernels", gpus=4, node_selector={"mlp.io/gpu-tier": "silver"})
    )
    _wait_workload_cond(private, custom, later.metadata.uid, "Admitted", "True")


def test_tainted_flavor_needs_toleration_and_adds_its_tolerations(kube_members):
    public = kube_members.public
    core = client.CoreV1Api(public.api_client())
    custom = client.CustomObjectsApi(public.api_client())
    untolerated = core.create_namespaced_pod("jupyter", python_pod("plain", queue="kernels", gpus=1))
    wl = _wait_workload_cond(public, custom, untolerated.metadata.uid, "QuotaReserved", "False")
    assert _cond(wl, "QuotaReserved")["reason"] == "NoMatchingFlavor"
    ok = core.create_namespaced_pod(
        "jupyter", python_pod("opted-in", queue="kernels", gpus=1, tolerations=[GOLD_TOLERATION])
    )
    _wait_workload_cond(public, custom, ok.metadata.uid, "Admitted", "True")
    public.wait_for_pod_phase("jupyter", "opted-in", "Running")
    assert core.read_namespaced_pod("opted-in", "jupyter").spec.node_name == "public-gold-1"


def test_cohort_borrowing_between_cluster_queues(private, core, custom):
    private.load_kueue("""
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: gpu-lender}
spec:
  namespaceSelector: {}
  cohortName: gpu
  resourceGroups:
  - coveredResources: [nvidia.com/gpu]
    flavors:
    - name: silver
      resources: [{name: nvidia.com/gpu, nominalQuota: 4}]
""")
    private.set_node_capacity("private-silver-1", nvidia_com_gpu=8)
    pod = core.create_namespaced_pod(
        "jupyter", python_pod("wide", queue="kernels", gpus=6, node_selector={"mlp.io/gpu-tier": "silver"})
    )
    _wait_workload_cond(private, custom, pod.metadata.uid, "Admitted", "True")

    def borrowed():
        cq = custom.get_cluster_custom_object(G, V, "clusterqueues", "gpu-private")
        silver = next(
            (f for f in cq.get("status", {}).get("flavorsUsage", []) if f["name"] == "silver"), None
        )
        return silver and {r["name"]: r["borrowed"] for r in silver["resources"]}["nvidia.com/gpu"] == "2"

    private.wait_for(borrowed, what="2 borrowed GPUs in gpu-private status")


def test_request_beyond_any_quota_exceeds_max_quota(private, core, custom):
    pod = core.create_namespaced_pod("jupyter", python_pod("huge", queue="kernels", gpus=64))
    wl = _wait_workload_cond(private, custom, pod.metadata.uid, "QuotaReserved", "False")
    assert _cond(wl, "QuotaReserved")["reason"] == "ExceedsMaxQuota"


def test_stop_policy_hold_blocks_admission(private, core, custom):
    custom.patch_cluster_custom_object(G, V, "clusterqueues", "gpu-private", {"spec": {"stopPolicy": "Hold"}})
    pod = core.create_namespaced_pod("jupyter", python_pod("held", queue="kernels", gpus=1))
    wl = _wait_workload_cond(private, custom, pod.metadata.uid, "QuotaReserved", "False")
    assert "inactive" in _cond(wl, "QuotaReserved")["message"]
    private.wait_for(
        lambda: (
            (
                _cond(custom.get_cluster_custom_object(G, V, "clusterqueues", "gpu-private"), "Active") or {}
            ).get("status")
            == "False"
        ),
        what="CQ Active=False",
    )
    custom.patch_cluster_custom_object(G, V, "clusterqueues", "gpu-private", {"spec": {"stopPolicy": "None"}})
    _wait_workload_cond(private, custom, pod.metadata.uid, "Admitted", "True")


def test_preempt_pod_evicts_workload_and_deletes_pod(private, core, custom):
    pod = core.create_namespaced_pod("jupyter", python_pod("victim", queue="kernels", gpus=1))
    private.wait_for_pod_phase("jupyter", "victim", "Running")
    private.preempt_pod("jupyter", "victim")
    private.wait_for(
        lambda: private.find("v1", "Pod", "victim", "jupyter") is None, what="preempted pod removal"
    )
    events = core.list_namespaced_event("jupyter", field_selector="involvedObject.name=victim").items
    assert any(e.reason == "Stopped" and "Preempted" in e.message for e in events)
    assert pod.metadata.uid


def test_higher_priority_workload_preempts_lower_within_cluster_queue(private, core, custom):
    private.load_kueue("""
apiVersion: kueue.x-k8s.io/v1beta2
kind: WorkloadPriorityClass
metadata: {name: urgent}
value: 1000
""")
    custom.patch_cluster_custom_object(
        G,
        V,
        "clusterqueues",
        "gpu-private",
        {"spec": {"preemption": {"withinClusterQueue": "LowerPriority"}}},
    )
    core.create_namespaced_pod(
        "jupyter", python_pod("low", queue="kernels", gpus=4, node_selector={"mlp.io/gpu-tier": "silver"})
    )
    private.wait_for_pod_phase("jupyter", "low", "Running")
    high = core.create_namespaced_pod(
        "jupyter",
        python_pod(
            "high",
            queue="kernels",
            gpus=4,
            priority_class="urgent",
            node_selector={"mlp.io/gpu-tier": "silver"},
        ),
    )
    wl = _wait_workload_cond(private, custom, high.metadata.uid, "Admitted", "True")
    assert wl["spec"]["priority"] == 1000
    private.wait_for(
        lambda: private.find("v1", "Pod", "low", "jupyter") is None, what="low-priority pod deleted"
    )


def test_visibility_api_reports_positions(private, core):
    for name in ("a", "b", "c"):
        core.create_namespaced_pod(
            "jupyter", python_pod(name, queue="kernels", gpus=4, node_selector={"mlp.io/gpu-tier": "silver"})
        )
    api = private.api_client()

    def pending(path: str) -> list:
        data = api.call_api(*api.param_serialize("GET", path, auth_settings=["BearerToken"])).read()
        import json

        return json.loads(data)["items"]

    path_cq = "/apis/visibility.kueue.x-k8s.io/v1beta2/clusterqueues/gpu-private/pendingworkloads"
    items = private.wait_for(lambda: len(pending(path_cq)) == 2 and pending(path_cq), what="2 pending")
    assert [i["positionInClusterQueue"] for i in items] == [0, 1]
    assert all(i["localQueueName"] == "kernels" for i in items)
    lq_items = pending(
        "/apis/visibility.kueue.x-k8s.io/v1beta2/namespaces/jupyter/localqueues/kernels/pendingworkloads"
    )
    assert [i["positionInLocalQueue"] for i in lq_items] == [0, 1]
    assert {i["metadata"]["name"][:6] for i in items} <= {"pod-b-", "pod-c-", "pod-a-"}


def test_v1beta1_reads_use_v1beta1_field_names(private, custom):
    cq = custom.get_cluster_custom_object(G, "v1beta1", "clusterqueues", "gpu-private")
    assert cq["apiVersion"] == "kueue.x-k8s.io/v1beta1"
    assert cq["spec"]["cohort"] == "gpu" and "cohortName" not in cq["spec"]
    lq = private.wait_for(
        lambda: (
            "flavorUsage"
            in custom.get_namespaced_custom_object(G, "v1beta1", "jupyter", "localqueues", "kernels").get(
                "status", {}
            )
            and custom.get_namespaced_custom_object(G, "v1beta1", "jupyter", "localqueues", "kernels")
        ),
        what="v1beta1 LocalQueue status",
    )
    assert "flavorsUsage" not in lq["status"]
    assert (_cond(lq, "Active") or {}).get("status") == "True"


def test_objects_written_by_the_fake_kueue_match_the_upstream_schemas(private, core, custom, require_crds):
    """Our Workloads and queue statuses must have the shapes real Kueue writes (the CRD schemas say which)."""
    from .schema import validate_custom_object

    pod = core.create_namespaced_pod("jupyter", python_pod("shape", queue="kernels", gpus=1))
    wl = _wait_workload_cond(private, custom, pod.metadata.uid, "Admitted", "True")
    cq = custom.get_cluster_custom_object(G, V, "clusterqueues", "gpu-private")
    lq = custom.get_namespaced_custom_object(G, V, "jupyter", "localqueues", "kernels")
    for obj, plural in ((wl, "workloads"), (cq, "clusterqueues"), (lq, "localqueues")):
        rtype = private.registry.get(G, plural)
        validate_custom_object(obj, rtype.schemas[V], rtype.kind, G)
