"""Policies used by the Kubernetes backend tests, built with the real policy parser."""

from __future__ import annotations

from pathlib import Path

from mlp_kernel.placement.policy import Policy
from mlp_kernel.placement.policy_load import parse_policy

ROOT = Path(__file__).resolve().parents[2]
KERNELSPEC = ROOT / "kernelspecs" / "gpu-auto"
PLATFORM_POLICY = KERNELSPEC / "platform-policy.yaml"

TEST_MEMBERS_POLICY = """
version: 1
tiers: [bronze, silver, gold]
members:
  private: {backend: kubernetes, namespace: jupyter, local_queue: kernels, cluster_queue: gpu-private,
            kubeconfig_context: private}
  public: {backend: kubernetes, public: true, namespace: jupyter, local_queue: kernels,
           cluster_queue: gpu-public, kubeconfig_context: public}
flavors:
  bronze: {member: private, tier: bronze, gpu_models: [T4], node_labels: {mlp.io/gpu-tier: bronze},
           price_per_gpu_hour: 0}
  silver: {member: private, tier: silver, gpu_models: [V100], node_labels: {mlp.io/gpu-tier: silver},
           price_per_gpu_hour: 0}
  gold:
    member: public
    tier: gold
    gpu_models: [A100]
    node_labels: {mlp.io/gpu-tier: gold}
    tolerations: [{key: mlp.io/gpu-tier, operator: Equal, value: gold, effect: NoSchedule}]
    price_per_gpu_hour: 4.1
max_gpus: 4
"""


def members_policy() -> Policy:
    """The members of tests/kubeapi's fixtures: private (bronze, silver) and public (gold)."""
    return parse_policy(TEST_MEMBERS_POLICY)
