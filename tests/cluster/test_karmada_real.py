"""Real Karmada (karmada-aggregated-apiserver + karmada-controller-manager) over the real members.

What GPU (auto) relies on from Karmada, shown on the real thing instead of ``tests/kubeapi``'s Karmada: each
joined ``Cluster`` turns Ready from the member's own health, an unreachable member turns NotReady (and
tainted) and back, the cluster proxy path is answered by the member as the caller (impersonation), and the
product's own reads (``state_from_cluster`` with ``karmada=``, ``member_configuration`` for a
``karmada_cluster`` member) work against it. Karmada starts once for this module only (``karmada``), so the
other real-cluster tests do not pay for it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client

from mlp_kernel.backends.base import LaunchError, Phase
from mlp_kernel.backends.kubernetes.members import KARMADA_PROXY, Connection, member_configuration
from mlp_kernel.placement.adapters.live import state_from_cluster
from mlp_kernel.placement.policy_load import parse_policy
from tests.backend_kubernetes.conftest import make_backend
from tests.backend_kubernetes.e2e import execute, kernel_pods, launch_all, spec
from tests.backend_kubernetes.policies import TEST_MEMBERS_POLICY

from . import build
from .fixtures import _unavailable
from .karmada import KARMADA_NAMESPACE, Cable, KarmadaPlane, member_port, start_karmada
from .members import RealMembers
from .rest import ApiError

pytestmark = pytest.mark.timeout(300)

GPU = "nvidia.com/gpu"
NOT_READY_TAINT = {"key": "cluster.karmada.io/not-ready", "effect": "NoSchedule"}
VIA_KARMADA = TEST_MEMBERS_POLICY.replace("kubeconfig_context: public}", "karmada_cluster: public}")


@pytest.fixture(scope="module")
def karmada(real_members: RealMembers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KarmadaPlane]:
    reason = build.missing_reason((build.KARMADA,))
    if reason:
        _unavailable(reason)
    if not build.KARMADA.built:
        build.build((build.KARMADA,))
    members = {name: m.plane for name, m in real_members.members.items()}
    t0 = time.monotonic()
    plane = start_karmada(tmp_path_factory.mktemp("karmada"), real_members.pki, members)
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in plane.timings.items())
    print(f"karmada started in {time.monotonic() - t0:.1f} s ({steps})", file=sys.stderr)
    try:
        yield plane
    finally:
        plane.stop()


def wait(fn: Any, what: str, timeout: float = 60) -> Any:
    end = time.monotonic() + timeout
    value = None
    while time.monotonic() < end:
        try:
            value = fn()
        except ApiError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_joined_members_become_ready_with_their_own_status(karmada: KarmadaPlane) -> None:
    for name, gpus in (("private", "8"), ("public", "8")):
        wait(lambda n=name: karmada.ready(n) == "True", f"Cluster {name} Ready=True")
        cluster = karmada.cluster(name)
        assert cluster is not None
        status = cluster["status"]
        # read from the member by the cluster status controller: its version and its nodes' capacity
        assert status["kubernetesVersion"] == build.KUBERNETES.version
        summary = wait(lambda n=name: karmada.cluster(n)["status"].get("resourceSummary"), "resourceSummary")
        assert summary["allocatable"][GPU] == gpus
        assert cluster["metadata"]["labels"] == {"mlp.io/member": name}
        # the taint manager lifts the not-ready taint after it sees Ready=True: a separate, later write
        wait(
            lambda n=name: (
                NOT_READY_TAINT
                not in [
                    {"key": t["key"], "effect": t["effect"]}
                    for t in karmada.cluster(n)["spec"].get("taints", [])
                ]
            ),
            f"the {NOT_READY_TAINT['key']} taint lifted from {name}",
        )


def test_proxy_path_is_answered_by_the_member_as_the_caller(
    karmada: KarmadaPlane, real_members: RealMembers
) -> None:
    marker = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "only-on-public"}}
    real_members.public.apply(marker)
    try:
        wait(lambda: karmada.ready("public") == "True", "public Ready")
        names = {
            ns["metadata"]["name"]
            for ns in karmada.rest.get(karmada.proxy_path("public") + "/api/v1/namespaces")["items"]
        }
        assert "only-on-public" in names and "kueue-system" in names
        private = karmada.rest.get(karmada.proxy_path("private") + "/api/v1/namespaces")["items"]
        assert "only-on-public" not in {ns["metadata"]["name"] for ns in private}
        # the member sees Karmada's caller (impersonated by karmada-impersonator), not Karmada's own account
        review = karmada.rest.request(
            "POST",
            karmada.proxy_path("public") + "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        user = review["status"]["userInfo"]
        assert user["username"] == "admin"
        assert "system:masters" in user["groups"]
        with pytest.raises(ApiError) as missing:
            karmada.rest.get(karmada.proxy_path("public") + "/api/v1/namespaces/jupyter/secrets/missing")
        assert missing.value.status == 404 and missing.value.reason == "NotFound"
        with pytest.raises(ApiError) as unknown:
            karmada.rest.get(karmada.proxy_path("nowhere") + "/api/v1/namespaces")
        assert unknown.value.status == 404
    finally:
        real_members.public.delete("v1", "Namespace", "only-on-public")


def test_unreachable_member_turns_not_ready_tainted_and_back(
    karmada: KarmadaPlane, real_members: RealMembers
) -> None:
    cable = Cable(member_port(real_members.public.url)).plug()
    karmada.join("cabled", real_members.public.rest, cable.url)
    try:
        wait(lambda: karmada.ready("cabled") == "True", "cabled Ready=True")
        cable.cut()
        wait(lambda: karmada.ready("cabled") == "False", "cabled Ready=False after the cut", 60)
        cluster = wait(
            lambda: (
                NOT_READY_TAINT
                in [
                    {"key": t["key"], "effect": t["effect"]}
                    for t in karmada.cluster("cabled")["spec"].get("taints", [])
                ]
                and karmada.cluster("cabled")
            ),
            "the not-ready taint",
        )
        ready = next(c for c in cluster["status"]["conditions"] if c["type"] == "Ready")
        assert ready["reason"] == "ClusterNotReachable", ready
        # the proxy does not look at Ready: it forwards, and the dial fails
        with pytest.raises(ApiError) as down:
            karmada.rest.get(karmada.proxy_path("cabled") + "/api/v1/namespaces")
        assert down.value.status == 500, down.value.body  # tests/kubeapi answers 503
        assert "connection refused" in down.value.body["message"]
        cable.plug()
        wait(lambda: karmada.ready("cabled") == "True", "cabled Ready=True after plugging back", 60)
    finally:
        cable.cut()
        karmada.rest.delete("cluster.karmada.io/v1alpha1", "Cluster", "cabled")


def test_proxy_forwards_to_a_not_ready_member(karmada: KarmadaPlane, real_members: RealMembers) -> None:
    """Ready and the proxy are independent: a member whose health check fails (a wrong token in the Cluster's
    secretRef) is NotReady, yet the proxy (impersonatorSecretRef) still reaches it. tests/kubeapi used to
    refuse (503); the product must not count on the proxy to keep it off a NotReady member."""
    karmada.join("badtoken", real_members.public.rest, real_members.public.url)
    try:
        wait(lambda: karmada.ready("badtoken") == "True", "badtoken Ready first")
        karmada.rest.merge_patch(
            "v1", "Secret", "badtoken", {"stringData": {"token": "not-a-token"}}, KARMADA_NAMESPACE
        )
        wait(lambda: karmada.ready("badtoken") == "False", "badtoken Ready=False")
        names = karmada.rest.get(karmada.proxy_path("badtoken") + "/api/v1/namespaces")["items"]
        assert "kueue-system" in {ns["metadata"]["name"] for ns in names}
    finally:
        karmada.rest.delete("cluster.karmada.io/v1alpha1", "Cluster", "badtoken")


def test_product_reads_karmada_health_and_the_member_through_the_proxy(
    karmada: KarmadaPlane, kube_members: RealMembers
) -> None:
    policy = parse_policy(VIA_KARMADA)
    assert policy.members["public"].health == "karmada"
    connection = Connection(str(karmada.kubeconfig_path), "karmada")
    proxied = client.ApiClient(member_configuration(policy.members["public"], connection))
    clients = {"private": karmada.api_client("private"), "public": proxied}
    wait(lambda: karmada.ready("public") == "True", "public Ready")
    state = state_from_cluster(policy, clients, karmada=karmada.api_client())
    public = state.members["public"]
    assert public.ready and public.source == "live", public
    # Kueue's ClusterQueue, read through the proxy from the member: gold's quota is the member's
    assert public.flavors["gold"].nominal_gpus == 8, public
    assert state.members["private"].ready, state.members["private"]
    # the product's client through the proxy writes to the member (the backend creates pods this way)
    core = client.CoreV1Api(proxied)
    core.create_namespaced_config_map("jupyter", {"metadata": {"name": "via-karmada"}})
    assert kube_members.public.find("v1", "ConfigMap", "via-karmada", "jupyter") is not None
    assert kube_members.private.find("v1", "ConfigMap", "via-karmada", "jupyter") is None
    kube_members.public.delete("v1", "ConfigMap", "via-karmada", "jupyter")

    # a Karmada Cluster that is not Ready takes the member out, with Karmada's reason
    cable = Cable(member_port(kube_members.public.url)).plug()
    karmada.join("cabled-product", kube_members.public.rest, cable.url)
    try:
        wait(lambda: karmada.ready("cabled-product") == "True", "cabled-product Ready")
        cable.cut()
        wait(lambda: karmada.ready("cabled-product") == "False", "cabled-product Ready=False")
        policy = parse_policy(
            VIA_KARMADA.replace("karmada_cluster: public}", "karmada_cluster: cabled-product}")
        )
        down = state_from_cluster(policy, {"private": clients["private"]}, karmada=karmada.api_client())
        assert not down.members["public"].ready
        assert (
            "Karmada Cluster 'cabled-product' Ready=False (ClusterNotReachable"
            in down.members["public"].reason
        )
        assert down.members["private"].ready, down.members["private"].reason
    finally:
        cable.cut()
        karmada.rest.delete("cluster.karmada.io/v1alpha1", "Cluster", "cabled-product")


async def test_product_runs_a_gold_kernel_on_a_member_reached_through_the_karmada_proxy(
    karmada: KarmadaPlane, kube_members: RealMembers
) -> None:
    """tests/backend_kubernetes/test_e2e_karmada.py's launch, with real Karmada in the path: the backend
    creates the pod, watches it and reaches its kernel through the proxy; real Kueue admits it on gold."""
    policy = parse_policy(VIA_KARMADA)
    backend = make_backend(
        SimpleNamespace(kubeconfig_path=str(karmada.kubeconfig_path)), policy, karmada_context="karmada"
    )
    cfg = member_configuration(policy.members["public"], Connection(str(karmada.kubeconfig_path), "karmada"))
    assert cfg.host == karmada.url + KARMADA_PROXY.format(name="public")
    try:
        launch = spec(member="public", flavor="gold")
        events = await launch_all(backend, launch)
        assert events[-1].phase == Phase.CONNECTED, events[-1]
        pod = kube_members.public.get("v1", "Pod", events[-1].remote.handle["pod"], "jupyter")
        assert pod["spec"]["nodeName"] == "public-gold-1"
        assert kube_members.public.workload_for("jupyter", pod["metadata"]["name"]) is not None
        assert (await execute(events[-1].remote, "print('gold')"))["output"].strip() == "gold"
        await backend.release(events[-1].remote)
        kube_members.public.wait_for(
            lambda: not kernel_pods(kube_members.public, launch.kernel_id) or None, 30, what="released"
        )
    finally:
        backend.close()


async def test_product_launch_on_an_unreachable_member_behind_karmada_says_why(
    karmada: KarmadaPlane, kube_members: RealMembers
) -> None:
    cable = Cable(member_port(kube_members.public.url)).plug()
    karmada.join("cabled-launch", kube_members.public.rest, cable.url)
    policy = parse_policy(VIA_KARMADA.replace("karmada_cluster: public}", "karmada_cluster: cabled-launch}"))
    backend = make_backend(
        SimpleNamespace(kubeconfig_path=str(karmada.kubeconfig_path)), policy, karmada_context="karmada"
    )
    try:
        wait(lambda: karmada.ready("cabled-launch") == "True", "cabled-launch Ready")
        cable.cut()
        # Karmada's proxy answers 500 with the dial error (not 503); the product passes the cause on
        with pytest.raises(LaunchError, match=r"Cannot create the kernel pod .* 500 .*connection refused"):
            await launch_all(backend, spec(member="public", flavor="gold"))
    finally:
        backend.close()
        cable.cut()
        karmada.rest.delete("cluster.karmada.io/v1alpha1", "Cluster", "cabled-launch")
