"""The tiny scheduler: node selectors, taints and capacity decide binding; Unschedulable otherwise."""

from __future__ import annotations

from kubernetes import client

from .builders import python_pod


def _scheduled(pod) -> dict:
    return next(c for c in pod.status.conditions if c.type == "PodScheduled").to_dict()


def test_unschedulable_pod_reports_why_and_binds_once_capacity_appears(kube_member):
    core = client.CoreV1Api(kube_member.api_client())
    core.create_namespaced_pod("default", python_pod("big", gpus=16))
    kube_member.wait_for(
        lambda: (
            (
                c := [
                    x
                    for x in core.read_namespaced_pod("big", "default").status.conditions or []
                    if x.type == "PodScheduled"
                ]
            )
            and c[0].reason == "Unschedulable"
        ),
        what="Unschedulable condition",
    )
    cond = _scheduled(core.read_namespaced_pod("big", "default"))
    assert "Insufficient nvidia.com/gpu" in cond["message"]
    events = core.list_namespaced_event("default", field_selector="involvedObject.name=big").items
    assert [e.reason for e in events] == ["FailedScheduling"]
    kube_member.set_node_capacity("private-silver-1", nvidia_com_gpu=16)
    kube_member.wait_for_pod_phase("default", "big", "Running")
    assert core.read_namespaced_pod("big", "default").spec.node_name == "private-silver-1"


def test_taints_require_tolerations(kube_member):
    core = client.CoreV1Api(kube_member.api_client())
    for node in ("private-bronze-1", "private-silver-1"):
        kube_member.set_node_taints(node, [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    core.create_namespaced_pod("default", python_pod("plain"))
    core.create_namespaced_pod(
        "default",
        python_pod(
            "tolerant", tolerations=[{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]
        ),
    )
    kube_member.wait_for_pod_phase("default", "tolerant", "Running")
    kube_member.wait_for(
        lambda: (
            "untolerated taint"
            in (_scheduled(core.read_namespaced_pod("plain", "default")).get("message") or "")
        ),
        what="untolerated taint message",
    )


def test_node_selector_picks_matching_node(kube_member):
    core = client.CoreV1Api(kube_member.api_client())
    core.create_namespaced_pod(
        "default", python_pod("sel", node_selector={"nvidia.com/gpu.product": "Tesla-T4"})
    )
    kube_member.wait_for_pod_phase("default", "sel", "Running")
    assert core.read_namespaced_pod("sel", "default").spec.node_name == "private-bronze-1"


def test_binding_and_eviction_subresources(kube_member):
    core = client.CoreV1Api(kube_member.api_client())
    pod = python_pod("manual")
    pod["spec"]["schedulerName"] = "my-scheduler"  # the tiny scheduler leaves it alone
    core.create_namespaced_pod("default", pod)
    # Like the real apiserver, both answer a Success Status, which the v37 client cannot parse as the
    # declared Binding/Eviction model: read the raw response.
    binding = client.V1Binding(
        metadata=client.V1ObjectMeta(name="manual"),
        target=client.V1ObjectReference(api_version="v1", kind="Node", name="private-bronze-1"),
    )
    raw = core.create_namespaced_pod_binding("manual", "default", binding, _preload_content=False)
    assert raw.status == 201
    kube_member.wait_for_pod_phase("default", "manual", "Running")
    assert core.read_namespaced_pod("manual", "default").spec.node_name == "private-bronze-1"
    eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name="manual", namespace="default"))
    assert (
        core.create_namespaced_pod_eviction("manual", "default", eviction, _preload_content=False).status
        == 201
    )
    kube_member.wait_for(
        lambda: kube_member.find("v1", "Pod", "manual", "default") is None, what="evicted pod gone"
    )
