"""Kernel pods on the private member mount the per-user snapshot volume; public ones never do."""

from __future__ import annotations

from mlp_kernel.backends.kubernetes.objects import render_kernel_objects
from mlp_kernel.placement.policy_load import parse_policy

from .policies import KERNELSPEC, TEST_MEMBERS_POLICY

VOLUME = """
snapshot: {storage: {kind: volume, claim: home-alice, path: /home/jovyan/.mlp-kernel/snapshots}}
"""


def volumes(member: str, flavor: str, policy_text: str) -> tuple[list[dict], list[dict]]:
    policy = parse_policy(policy_text)
    _secret, pod = render_kernel_objects(KERNELSPEC, policy, member=member, flavor=flavor, user="alice",
                                         key="0123456789abcdef-secret-hmac-key", kernel_id="k-1")  # fmt: skip
    return pod["spec"]["volumes"], pod["spec"]["containers"][0]["volumeMounts"]


def test_private_kernel_pod_mounts_the_snapshot_claim():
    vols, mounts = volumes("private", "silver", TEST_MEMBERS_POLICY + VOLUME)
    assert {"name": "snapshots", "persistentVolumeClaim": {"claimName": "home-alice"}} in vols
    assert {"name": "snapshots", "mountPath": "/home/jovyan/.mlp-kernel/snapshots"} in mounts


def test_public_kernel_pod_never_mounts_it_and_local_storage_adds_nothing():
    vols, mounts = volumes("public", "gold", TEST_MEMBERS_POLICY + VOLUME)
    assert [v["name"] for v in vols] == ["connection"] and [m["name"] for m in mounts] == ["connection"]
    vols, _ = volumes("private", "silver", TEST_MEMBERS_POLICY)
    assert [v["name"] for v in vols] == ["connection"]
