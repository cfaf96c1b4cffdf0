"""Policies used by the Kubernetes backend tests, built with the real policy parser."""

from __future__ import annotations

from pathlib import Path

from mlp_kernel.placement.policy import Policy
from mlp_kernel.placement.policy_load import parse_policy

ROOT = Path(__file__).resolve().parents[2]
KERNELSPEC = ROOT / "kernelspecs" / "gpu-auto"
PLATFORM_POLICY = KERNELSPEC / "platform-policy.yaml"

TWO_MEMBERS = """
version: 1
tiers: [silver, gold]
members:
  private: {backend: kubernetes, namespace: jupyter, local_queue: kernels, cluster_queue: gpu-private,
            kubeconfig_context: private}
  aws: {backend: kubernetes, public: true, namespace: jupyter, local_queue: kernels, cluster_queue: gpu-aws,
        kubeconfig_context: aws}
flavors:
  silver: {member: private, tier: silver, gpu_models: [V100], node_labels: {mlp.io/gpu-tier: silver},
           price_per_gpu_hour: 0}
  gold:
    member: aws
    tier: gold
    gpu_models: [A100]
    node_labels: {mlp.io/gpu-tier: gold}
    tolerations: [{key: mlp.io/gpu-tier, operator: Equal, value: gold, effect: NoSchedule}]
    price_per_gpu_hour: 4.1
max_gpus: 4
"""


def two_members() -> Policy:
    return parse_policy(TWO_MEMBERS)
