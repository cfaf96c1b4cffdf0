"""The exact GPU model on the real control plane (issue 14 §3): ``%gpu h100`` lands on H100 nodes only.

The public member's Gold flavor gets a second node: ``public-gold-1`` carries GFD's
``nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB`` (tests/kubeapi/fixtures.py), ``public-gold-h100`` an H100
product. Both have the flavor's label ``mlp.io/gpu-tier=gold``, so Kueue's ResourceFlavor cannot tell them
apart. Each pod here is what the product makes of a ``%gpu`` line: ``parse_magics`` -> ``decide`` ->
``render_kernel_objects`` with the decision's pin, created on the real API server, admitted by real Kueue
(which compares only its flavors' label keys, so the product key does not change the flavor) and bound by the
real kube-scheduler. Pods without a model spread over both nodes (the scheduler's least-allocated scoring);
pods of ``%gpu h100`` go to the H100 node even when the A100 node is emptier, and ``%gpu a100`` to the A100.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pytest

from mlp_kernel.backends.kubernetes.objects import render_kernel_objects
from mlp_kernel.gateway.magic import parse_magics
from mlp_kernel.placement import ClusterState, GpuRequest, decide, parse_policy
from mlp_kernel.placement.types import Action
from tests.backend_kubernetes.policies import KERNELSPEC
from tests.kubeapi.fixtures import GPU
from tests.kubeapi.members import NodeSpec

from .members import RealMember, RealMembers

pytestmark = pytest.mark.timeout(240)

A100_NODE, H100_NODE = "public-gold-1", "public-gold-h100"
H100_SKUS = ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-NVL"]  # two SKUs: the pin is a node affinity In term

POLICY = parse_policy(f"""
version: 1
tiers: [bronze, silver, gold]
members:
  private: {{backend: kubernetes, namespace: jupyter, local_queue: kernels, kubeconfig_context: private}}
  public: {{backend: kubernetes, public: true, namespace: jupyter, local_queue: kernels,
           kubeconfig_context: public}}
flavors:
  bronze: {{member: private, tier: bronze, gpu_models: [T4], node_labels: {{mlp.io/gpu-tier: bronze}},
           price_per_gpu_hour: 0}}
  silver: {{member: private, tier: silver, gpu_models: [V100], node_labels: {{mlp.io/gpu-tier: silver}},
           price_per_gpu_hour: 0}}
  gold:
    member: public
    tier: gold
    gpu_models: [A100, H100]
    gpu_products: {{A100: NVIDIA-A100-SXM4-80GB, H100: {H100_SKUS}}}
    node_labels: {{mlp.io/gpu-tier: gold}}
    tolerations: [{{key: mlp.io/gpu-tier, operator: Equal, value: gold, effect: NoSchedule}}]
    price_per_gpu_hour: 4.1
max_gpus: 4
""")


@pytest.fixture
def gold_with_h100(real_kube_members: RealMembers) -> Any:
    """The public member with a second Gold node, of H100s; removed again afterwards (the plane is shared)."""
    m = real_kube_members.public
    assert m.kubelet is not None
    node = NodeSpec(
        H100_NODE,
        {"mlp.io/gpu-tier": "gold", "nvidia.com/gpu.product": H100_SKUS[0]},
        taints=({"key": "mlp.io/gpu-tier", "value": "gold", "effect": "NoSchedule"},),
        capacity={"cpu": "96", "memory": "1024Gi", GPU: "8", "pods": "110"},
    )
    m.kubelet.register(node)
    m.wait_for(lambda: _ready(m, H100_NODE), 30, what=f"node {H100_NODE} Ready")
    try:
        yield m
    finally:
        for pod in m.list("v1", "Pod", "jupyter"):
            m.delete("v1", "Pod", pod["metadata"]["name"], "jupyter")
        m.wait_for(lambda: not m.list("v1", "Pod", "jupyter"), 60, what="the test's pods gone")
        m.kubelet.nodes.pop(H100_NODE, None)
        m.delete("v1", "Node", H100_NODE)


def _ready(m: RealMember, name: str) -> bool:
    """Ready, and schedulable: the node lifecycle controller lifts a new node's
    ``node.kubernetes.io/not-ready`` NoSchedule taint in a separate, later write than the kubelet's Ready
    condition; until then the scheduler filters the node out (the fresh-clone CI once bound both unpinned pods
    to the A100 node that way)."""
    node = m.find("v1", "Node", name) or {}
    conditions = node.get("status", {}).get("conditions") or []
    taints = {t.get("key") for t in node.get("spec", {}).get("taints") or []}
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) and not (
        taints & {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}
    )


def _launch(m: RealMember, line: str, name: str) -> dict[str, Any]:
    """What the gateway makes of ``line``: the decision, then the rendered Secret and Pod, created."""
    request = replace(GpuRequest(), **parse_magics([line], POLICY).request)
    d = decide(POLICY, ClusterState.from_policy(POLICY), request, datetime.now(timezone.utc))
    assert d.action is Action.BURST and d.flavor == "gold", d.summary
    secret, pod = render_kernel_objects(
        KERNELSPEC,
        POLICY,
        d.member or "",
        d.flavor,
        "alice",
        kernel_id=name,
        gpus=d.gpu_count,
        gpu_model=d.gpu_model,
        pin_model=d.pinned_model,
    )
    m.create(pod)
    m.create(secret)
    return pod


def _node_of(m: RealMember, pod: dict[str, Any]) -> str:
    name = pod["metadata"]["name"]

    def bound() -> str | None:
        return m.get("v1", "Pod", name, "jupyter")["spec"].get("nodeName")

    return str(m.wait_for(bound, 90, what=f"pod {name} admitted by Kueue and bound by the scheduler"))


def test_a_named_model_is_bound_to_its_nodes_and_no_model_may_use_either(gold_with_h100: RealMember) -> None:
    m = gold_with_h100
    anywhere = [_launch(m, "%gpu tier=gold burst=on budget=flex", f"any-{i}") for i in range(2)]
    for pod in anywhere:
        assert "affinity" not in pod["spec"] and "nvidia.com/gpu.product" not in pod["spec"]["nodeSelector"]
    # one at a time: the second goes to the emptier node, so the two spread over both Gold nodes
    assert {_node_of(m, anywhere[0]), _node_of(m, anywhere[1])} == {A100_NODE, H100_NODE}

    h100 = [_launch(m, "%gpu h100 burst=on budget=flex", f"h100-{i}") for i in range(2)]
    term = h100[0]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": H100_SKUS}]}
    ]
    # the A100 node is the emptier one after the first h100 pod, and still never chosen
    assert [_node_of(m, p) for p in h100] == [H100_NODE, H100_NODE]

    a100 = _launch(m, "%gpu a100 burst=on budget=flex", "a100-0")
    assert a100["spec"]["nodeSelector"]["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
    assert _node_of(m, a100) == A100_NODE

    # Kueue admitted every pod into Gold: the product key is not one of its flavor label keys
    for pod in [*anywhere, *h100, a100]:
        wl = m.workload_for("jupyter", pod["metadata"]["name"])
        assert wl is not None
        assert wl["status"]["admission"]["podSetAssignments"][0]["flavors"][GPU] == "gold"
