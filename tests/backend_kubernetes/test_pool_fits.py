"""Which launches may claim a Kubernetes warm-pool pod (``pool.fits``): only one whose own pod would be the
pool pod, on a member where a pod made for user ``platform`` can be handed to a user. The claim itself, on the
real control plane, is tests/cluster/test_pool_real.py."""

from __future__ import annotations

import dataclasses

import pytest

from mlp_kernel.backends.base import LaunchSpec
from mlp_kernel.backends.kubernetes.pool import fits
from mlp_kernel.placement.policy import Tenancy
from mlp_kernel.placement.types import Action, Decision, GpuRequest
from tests.backend_kubernetes.policies import members_policy

POLICY = members_policy()
MEMBER = POLICY.members["private"]
SILVER = dataclasses.replace(POLICY.flavors["silver"], warm_pool=2, warm_pool_gpus=1)


def spec(gpus: int = 1, pin: str | None = None, **request: object) -> LaunchSpec:
    decision = Decision(
        action=Action.RUN,
        member="private",
        flavor="silver",
        gpu_count=gpus,
        gpu_model=pin,
        pin_label="nvidia.com/gpu.product" if pin else None,
    )
    return LaunchSpec("k", "key", "hmac-sha256", decision, GpuRequest(gpu_count=gpus, **request))  # type: ignore[arg-type]


def test_a_launch_of_the_pools_size_and_nothing_else_fits() -> None:
    assert fits(MEMBER, SILVER, spec())


@pytest.mark.parametrize(
    ("why", "launch"),
    [
        ("another GPU count", spec(gpus=2)),
        ("a model pin the pool pod does not have", spec(pin="V100")),
        ("a data class (a pod label admission checks)", spec(data_class="internal")),
        ("its own CPU", spec(cpu="4")),
        ("its own memory", spec(memory="32Gi")),
    ],
)
def test_a_launch_whose_pod_differs_from_the_pool_pod_does_not_fit(why: str, launch: LaunchSpec) -> None:
    assert not fits(MEMBER, SILVER, launch), why


@pytest.mark.parametrize(
    ("why", "member", "flavor"),
    [
        ("no pool", MEMBER, dataclasses.replace(SILVER, warm_pool=0)),
        (
            "behind an ingress: a pool pod has no Service or route",
            dataclasses.replace(MEMBER, transport="ingress"),
            SILVER,
        ),
        (
            "a namespace per user",
            dataclasses.replace(MEMBER, tenancy=Tenancy(namespace="user-{username}")),
            SILVER,
        ),
        ("per-user workspace volume", dataclasses.replace(MEMBER, workspace_claim="home-{username}"), SILVER),
        ("per-user packages volume", dataclasses.replace(MEMBER, packages_claim="pkgs-{username}"), SILVER),
    ],
)
def test_a_member_where_a_pool_pod_cannot_become_a_users_does_not_fit(why: str, member, flavor) -> None:
    assert not fits(member, flavor, spec()), why
