"""The real control plane itself: Kueue's plain-pod admission, the real scheduler, the process kubelet.

These pin what the product relies on from the real components, with no product code in the way: a pod with
the queue-name label is gated and admitted by real Kueue into the first flavor with quota, gets that flavor's
nodeSelector and tolerations, is bound by the real scheduler to a fake GPU node and run by the kubelet.
"""

from __future__ import annotations

from tests.kubeapi.builders import python_pod

from .members import RealMembers

QUEUE = "kueue.x-k8s.io/queue-name"


def test_plain_pod_admitted_scheduled_and_run(real_kube_members: RealMembers) -> None:
    m = real_kube_members.private
    pod = python_pod(
        "hello", "print('hi from', __import__('os').environ['HOSTNAME'])", queue="kernels", gpus=1
    )
    pod["metadata"]["namespace"] = "jupyter"
    created = m.create(pod)
    gates = [g["name"] for g in created["spec"].get("schedulingGates") or []]
    # Kueue v0.17 also gates for Topology Aware Scheduling (on by default) and lifts it on a non-TAS admission
    assert sorted(gates) == ["kueue.x-k8s.io/admission", "kueue.x-k8s.io/topology"], created["spec"]
    done = m.wait_for_pod_phase("jupyter", "hello", ["Succeeded", "Failed"], timeout=60)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["spec"]["nodeName"] == "private-bronze-1"
    assert done["spec"]["nodeSelector"] == {"mlp.io/gpu-tier": "bronze"}
    wl = m.workload_for("jupyter", "hello")
    assert wl is not None
    assignment = wl["status"]["admission"]["podSetAssignments"][0]
    assert assignment["flavors"]["nvidia.com/gpu"] == "bronze"


def test_full_flavor_spills_to_the_next_then_queues(real_kube_members: RealMembers) -> None:
    m = real_kube_members.private
    for i, gpus in enumerate((4, 4, 1)):
        pod = python_pod(f"big-{i}", queue="kernels", gpus=gpus)
        pod["metadata"]["namespace"] = "jupyter"
        m.create(pod)
    m.wait_for_pod_phase("jupyter", "big-0", "Running", timeout=60)
    second = m.wait_for_pod_phase("jupyter", "big-1", "Running", timeout=60)
    assert second["spec"]["nodeName"] == "private-silver-1"

    def pending_with_reason() -> dict | None:
        wl = m.workload_for("jupyter", "big-2")
        conds = (wl or {}).get("status", {}).get("conditions") or []
        return wl if any(c["type"] == "QuotaReserved" and c["status"] == "False" for c in conds) else None

    wl = m.wait_for(pending_with_reason, 30, what="the third workload pending for quota")
    assert not wl["status"].get("admission")
    third = m.get("v1", "Pod", "big-2", "jupyter")
    assert third["spec"].get("schedulingGates"), "a pod without quota stays gated"


def test_deleting_a_running_pod_ends_its_process_and_frees_quota(real_kube_members: RealMembers) -> None:
    m = real_kube_members.private
    pod = python_pod("sleeper", queue="kernels", gpus=4, grace=5)
    pod["metadata"]["namespace"] = "jupyter"
    m.create(pod)
    m.wait_for_pod_phase("jupyter", "sleeper", "Running", timeout=60)
    assert m.kubelet is not None and m.kubelet.pids()
    m.delete("v1", "Pod", "sleeper", "jupyter")
    m.wait_for(lambda: m.find("v1", "Pod", "sleeper", "jupyter") is None, 30, what="the pod removed")
    m.wait_for(
        lambda: not m.kubelet.pids(),
        15,
        what=f"the container process ended (runs: {list(m.kubelet.runs.values())})",
    )

    def usage_zero() -> bool:
        cq = m.get("kueue.x-k8s.io/v1beta2", "ClusterQueue", "gpu-private")
        return cq.get("status", {}).get("reservingWorkloads", 0) == 0

    m.wait_for(usage_zero, 30, what="ClusterQueue gpu-private without reserving workloads")
