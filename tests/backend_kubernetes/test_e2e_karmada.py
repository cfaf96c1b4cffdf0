"""Members reached through Karmada's cluster proxy path instead of their own kubeconfig context."""

from __future__ import annotations

import pytest

from mlp_kernel.backends.base import LaunchError, Phase
from mlp_kernel.backends.kubernetes.members import KARMADA_PROXY, Connection, member_configuration
from mlp_kernel.placement.policy_load import parse_policy

from .conftest import make_backend
from .e2e import execute, kernel_pods, launch_all, spec
from .policies import TEST_MEMBERS_POLICY

pytestmark = pytest.mark.timeout(240)

VIA_KARMADA = TEST_MEMBERS_POLICY.replace("kubeconfig_context: public}", "karmada_cluster: public}")


async def test_public_member_through_the_karmada_proxy_runs_a_gold_kernel(kube_members) -> None:
    policy = parse_policy(VIA_KARMADA)
    assert policy.members["public"].karmada_cluster == "public"
    backend = make_backend(kube_members, policy, karmada_context="karmada")
    cfg = member_configuration(policy.members["public"], Connection(kube_members.kubeconfig_path, "karmada"))
    assert cfg.host == kube_members.karmada.url + KARMADA_PROXY.format(name="public")
    launch = spec(member="public", flavor="gold")
    events = await launch_all(backend, launch)
    assert events[-1].phase == Phase.CONNECTED
    pod = kube_members.public.find("v1", "Pod", events[-1].remote.handle["pod"], "jupyter")
    assert pod["spec"]["nodeName"] == "public-gold-1"
    assert {"key": "mlp.io/gpu-tier", "operator": "Equal", "value": "gold", "effect": "NoSchedule"} in pod[
        "spec"
    ]["tolerations"]
    assert (await execute(events[-1].remote, "print('gold')"))["output"].strip() == "gold"
    await backend.release(events[-1].remote)
    public = kube_members.public
    public.wait_for(
        lambda: not kernel_pods(public, launch.kernel_id) or None, 30, what="released through proxy"
    )
    backend.close()


async def test_unhealthy_member_behind_karmada_fails_with_a_clear_message(kube_members) -> None:
    policy = parse_policy(VIA_KARMADA)
    backend = make_backend(kube_members, policy, karmada_context="karmada")
    kube_members.karmada.set_member_ready("public", False)
    with pytest.raises(LaunchError, match="Cannot create the kernel pod .* 500 .*connection refused"):
        await launch_all(backend, spec(member="public", flavor="gold"))
    backend.close()
