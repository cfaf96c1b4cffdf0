"""Pytest fixtures for the test Kubernetes API; other test directories use them with
``from tests.kubeapi.fixtures import *  # noqa: F401,F403`` in their conftest.py.

Fixtures (all function-scoped, so every test gets fresh clusters; start-up takes milliseconds):
- ``kube_members`` -> ``KubeMembers``: private + public members and a Karmada plane, one kubeconfig with
  contexts ``private``, ``public``, ``karmada``; default nodes and Kueue queues (see ``kube_members_config``).
- ``kube_member`` -> ``Member``: one bare member (context ``test``) with the default private nodes, no queues.
- ``kube_members_config`` -> dict: override it in a conftest.py to change nodes, queues or kubelet options.
- ``kube_crd_dir`` -> Path | None: the upstream CRD folder, vendored in ``tests/crds``.
- ``require_crds``: the CRD folder; fails the test when it is absent (it is vendored: never a skip).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .kubeconfig import write_kubeconfig
from .members import KubeMembers, Member, NodeSpec, start_members
from .schema import DEFAULT_CRD_DIR

GPU = "nvidia.com/gpu"

PRIVATE_NODES = [
    NodeSpec(
        "private-bronze-1",
        {"mlp.io/gpu-tier": "bronze", "nvidia.com/gpu.product": "Tesla-T4"},
        capacity={"cpu": "32", "memory": "256Gi", GPU: "4", "pods": "110"},
    ),
    NodeSpec(
        "private-silver-1",
        {"mlp.io/gpu-tier": "silver", "nvidia.com/gpu.product": "Tesla-V100"},
        capacity={"cpu": "32", "memory": "256Gi", GPU: "4", "pods": "110"},
    ),
]
PUBLIC_NODES = [
    NodeSpec(
        "public-gold-1",
        {"mlp.io/gpu-tier": "gold", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
        taints=({"key": "mlp.io/gpu-tier", "value": "gold", "effect": "NoSchedule"},),
        capacity={"cpu": "96", "memory": "1024Gi", GPU: "8", "pods": "110"},
    ),
]

#: Kueue objects of the private member: Bronze then Silver flavors, 4 GPUs each, cohort ``gpu``.
PRIVATE_KUEUE = """
apiVersion: v1
kind: Namespace
metadata: {name: jupyter}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: bronze}
spec: {nodeLabels: {mlp.io/gpu-tier: bronze}}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: silver}
spec: {nodeLabels: {mlp.io/gpu-tier: silver}}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: gpu-private}
spec:
  namespaceSelector: {}
  cohortName: gpu
  queueingStrategy: BestEffortFIFO
  resourceGroups:
  - coveredResources: [cpu, memory, nvidia.com/gpu]
    flavors:
    - name: bronze
      resources:
      - {name: cpu, nominalQuota: 32}
      - {name: memory, nominalQuota: 256Gi}
      - {name: nvidia.com/gpu, nominalQuota: 4}
    - name: silver
      resources:
      - {name: cpu, nominalQuota: 32}
      - {name: memory, nominalQuota: 256Gi}
      - {name: nvidia.com/gpu, nominalQuota: 4}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: kernels, namespace: jupyter}
spec: {clusterQueue: gpu-private}
"""

#: Kueue objects of the public member: the opt-in Gold flavor (tainted), 8 GPUs.
PUBLIC_KUEUE = """
apiVersion: v1
kind: Namespace
metadata: {name: jupyter}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: gold}
spec:
  nodeLabels: {mlp.io/gpu-tier: gold}
  nodeTaints: [{key: mlp.io/gpu-tier, value: gold, effect: NoSchedule}]
  tolerations: [{key: mlp.io/gpu-tier, operator: Equal, value: gold, effect: NoSchedule}]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: gpu-public}
spec:
  namespaceSelector: {}
  queueingStrategy: BestEffortFIFO
  resourceGroups:
  - coveredResources: [cpu, memory, nvidia.com/gpu]
    flavors:
    - name: gold
      resources:
      - {name: cpu, nominalQuota: 96}
      - {name: memory, nominalQuota: 1024Gi}
      - {name: nvidia.com/gpu, nominalQuota: 8}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: kernels, namespace: jupyter}
spec: {clusterQueue: gpu-public}
"""


def crd_dir() -> Path | None:
    if not DEFAULT_CRD_DIR.is_dir():  # vendored: missing only in a broken checkout, which must not pass
        raise RuntimeError(f"the vendored CRD schemas are missing: {DEFAULT_CRD_DIR}")
    return DEFAULT_CRD_DIR


@pytest.fixture
def kube_crd_dir() -> Path | None:
    return crd_dir()


@pytest.fixture
def require_crds(kube_crd_dir: Path | None) -> Path:
    if kube_crd_dir is None:  # crd_dir() raises first; kept for a conftest that overrides kube_crd_dir
        pytest.fail(f"the vendored CRD schemas are missing: {DEFAULT_CRD_DIR}", pytrace=False)
    return kube_crd_dir


@pytest.fixture
def kube_members_config() -> dict[str, Any]:
    """Override in a conftest.py to customise ``kube_members`` (keys as in ``start_members``)."""
    return {
        "private_nodes": PRIVATE_NODES,
        "public_nodes": PUBLIC_NODES,
        "private_kueue": PRIVATE_KUEUE,
        "public_kueue": PUBLIC_KUEUE,
        "kubelet_options": {},
        "karmada_labels": {"private": {"mlp.io/member": "private"}, "public": {"mlp.io/member": "public"}},
        "karmada_specs": {
            "private": {"provider": "onprem", "region": "eu-central"},
            "public": {"provider": "aws", "region": "eu-central-1"},
        },
    }


@pytest.fixture
def kube_members(
    tmp_path: Path, kube_crd_dir: Path | None, kube_members_config: dict[str, Any]
) -> Iterator[KubeMembers]:
    """Private + public members and a Karmada plane (see module docstring)."""
    if kube_crd_dir is None and (
        kube_members_config.get("private_kueue") or kube_members_config.get("public_kueue")
    ):
        # Kueue kinds come from the upstream CRDs; without them the sample queues cannot be served.
        pytest.fail(f"the vendored CRD schemas are missing: {DEFAULT_CRD_DIR}", pytrace=False)
    members = start_members(tmp_path / "kube", crd_dir=kube_crd_dir, **kube_members_config)
    try:
        yield members
    finally:
        members.stop()


@pytest.fixture
def kube_member(tmp_path: Path, kube_crd_dir: Path | None) -> Iterator[Member]:
    """One member named ``test`` with the default private nodes and no Kueue queues."""
    member = Member(
        "test", nodes=PRIVATE_NODES, crd_dir=kube_crd_dir, kubelet_options={"root_dir": tmp_path / "kubelet"}
    )
    member.start()
    member.kubeconfig_path = str(write_kubeconfig(tmp_path / "kubeconfig.yaml", {"test": member.url}))
    try:
        yield member
    finally:
        member.stop()


__all__ = [
    "GPU",
    "PRIVATE_KUEUE",
    "PRIVATE_NODES",
    "PUBLIC_KUEUE",
    "PUBLIC_NODES",
    "KubeMembers",
    "Member",
    "NodeSpec",
    "kube_crd_dir",
    "kube_member",
    "kube_members",
    "kube_members_config",
    "require_crds",
]
