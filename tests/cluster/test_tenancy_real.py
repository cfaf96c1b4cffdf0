"""A namespace per user, through the product, on the real control plane (issue 15).

The per-user samples (docs/samples/rbac/per-user: alice's and bob's namespace, notebook ServiceAccount,
launcher Role, LocalQueue ``kernels``, and the ``kueue-reader`` ClusterRole placement reads with) are applied
as shipped. The policy names no namespace: ``tenancy: {namespace: "user-{username}", local_queue: kernels}``,
resolved for alice as her gateway does (``placement.tenancy.resolve_policy``). Every product call is made
with alice's own credentials, a TokenRequest token of ``user-alice/notebook`` (what her server's pod has):
placement reads the member's live Kueue state, decides, and the Kubernetes backend launches; real Kueue
admits the pod from ``user-alice/kernels``, the real scheduler binds it, the process kubelet runs the kernel
and a cell runs on it. The pod, its Secret and its Lease are in ``user-alice``; bob's server gets 403 on
each. ``mlp-kernel gc``'s listing, as the ``gc-admin.yaml`` ServiceAccount, finds orphans in both users'
namespaces and deletes them. A user nobody set up reads which namespace and what the admin must apply.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from mlp_kernel.backends.base import LaunchError, LaunchSpec, Phase
from mlp_kernel.backends.kubernetes import names
from mlp_kernel.backends.kubernetes.backend import KubernetesBackend
from mlp_kernel.backends.kubernetes.lifecycle import Timeouts
from mlp_kernel.placement import decide, parse_policy
from mlp_kernel.placement.adapters.live import state_from_cluster
from mlp_kernel.placement.policy import Policy
from mlp_kernel.placement.tenancy import resolve_policy
from mlp_kernel.placement.types import Action, GpuRequest
from tests.backend_kubernetes.conftest import free_ports
from tests.backend_kubernetes.e2e import KEY, execute, launch_all, spec
from tests.backend_kubernetes.policies import KERNELSPEC

from .fixtures import samples_for_module
from .members import RealMember, RealMembers
from .test_rbac_real import SAMPLES, USERS, as_service_account, forbidden

pytestmark = pytest.mark.timeout(240)

GC_SAMPLE = SAMPLES.parent / "gc-admin.yaml"
POLICY = """
version: 1
tiers: [bronze, silver]
members:
  private:
    backend: kubernetes
    kubeconfig_context: private
    tenancy: {namespace: "user-{username}", local_queue: kernels}
flavors:
  bronze: {member: private, tier: bronze, gpu_models: [T4], node_labels: {mlp.io/gpu-tier: bronze},
           price_per_gpu_hour: 0}
  silver: {member: private, tier: silver, gpu_models: [V100], node_labels: {mlp.io/gpu-tier: silver},
           price_per_gpu_hour: 0}
"""


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def tenant_docs() -> list[dict[str, Any]]:
    """The samples as shipped: kueue-reader and gc-admin once, a file per user."""
    applied = docs(SAMPLES / "kueue-reader.yaml") + docs(GC_SAMPLE)
    return applied + [d for user in USERS for d in docs(SAMPLES / f"user-{user}.yaml")]


tenant_namespaces = samples_for_module(tenant_docs)


@pytest.fixture
def tenants(tenant_namespaces: None, real_kube_members: RealMembers) -> Iterator[RealMember]:
    """The samples applied for each test (the reset between tests deletes Kueue's LocalQueues, and pods,
    which the users' kernels leave in their namespaces only if a test fails)."""
    m = real_kube_members.private
    for doc in tenant_docs():
        m.apply(doc)
    yield m


def token_client(m: RealMember, namespace: str, account: str) -> kubernetes.client.ApiClient:
    """The product's client as a pod of that ServiceAccount has it: a bound token, the cluster's CA."""
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token"
    token = m.rest.request("POST", path, request)["status"]["token"]
    cfg = kubernetes.client.Configuration()
    cfg.host = m.url
    cfg.ssl_ca_cert = str(m.plane.pki.ca)
    cfg.api_key = {"authorization": token}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    return kubernetes.client.ApiClient(cfg)


def backend_for(policy: Policy, api: kubernetes.client.ApiClient) -> KubernetesBackend:
    return KubernetesBackend(
        policy,
        KERNELSPEC,
        api_clients={"private": api},
        ports=free_ports(),
        curve=False,  # the test's own client is plain; CurveZMQ is test_e2e_curve's
        timeouts=Timeouts(queued_s=120, scheduling_s=60, pulling_s=60, connecting_s=60),
        tick_s=0.2,
        queue_refresh_s=0.5,
    )


def launch_spec(policy: Policy, api: kubernetes.client.ApiClient, user: str) -> Any:
    """What alice's gateway does for a cell: live state with her credentials, decide, a launch spec."""
    state = state_from_cluster(policy, {"private": api})
    request = GpuRequest(gpu_count=1, cpu="1", memory="1Gi")
    decision = decide(policy, state, request, dt.datetime.now(dt.timezone.utc))
    assert decision.action == Action.RUN, decision.explain()
    return LaunchSpec(
        kernel_id=f"tenancy-{user}",
        key=KEY,
        signature_scheme="hmac-sha256",
        decision=decision,
        request=request,
        user=user,
    )


async def test_alices_kernel_runs_in_her_namespace_with_her_credentials(tenants: RealMember) -> None:
    m = tenants
    alice_policy = resolve_policy(parse_policy(POLICY), "alice", "")
    member = alice_policy.members["private"]
    assert (member.namespace, member.local_queue) == ("user-alice", "kernels")
    alice = token_client(m, "user-alice", "notebook")
    launch = launch_spec(alice_policy, alice, "alice")
    assert (launch.decision.namespace, launch.decision.local_queue) == ("user-alice", "kernels")
    backend = backend_for(alice_policy, alice)
    try:
        events = await launch_all(backend, launch)
        assert events[-1].phase == Phase.CONNECTED, [e.message for e in events]
        remote = events[-1].remote
        assert remote is not None and remote.handle["namespace"] == "user-alice"
        result = await execute(remote, "print(6 * 7)")
        assert result["output"].strip() == "42"

        pod_name = remote.handle["pod"]
        pod = m.get("v1", "Pod", pod_name, "user-alice")
        assert pod["metadata"]["labels"][names.QUEUE_NAME] == "kernels"
        assert pod["metadata"]["labels"][names.USER] == "alice"
        assert pod["spec"]["nodeName"].startswith("private-")
        secret = m.get("v1", "Secret", names.secret_name(pod_name), "user-alice")
        lease = m.get("coordination.k8s.io/v1", "Lease", names.lease_name(pod_name), "user-alice")
        assert secret["metadata"]["ownerReferences"][0]["uid"] == pod["metadata"]["uid"]
        assert lease["spec"]["holderIdentity"] == backend.gateway_id
        workload = m.workload_for("user-alice", pod_name)
        assert workload is not None and workload["spec"]["queueName"] == "kernels"
        admitted = {c["type"]: c["status"] for c in workload["status"]["conditions"]}
        assert admitted.get("Admitted") == "True", workload["status"]
        assert not m.list("v1", "Pod", "jupyter"), "nothing in the shared namespace"

        # bob's server: 403 on alice's pod, Secret and Lease (its own namespace only)
        bob = as_service_account(m, "user-bob", "notebook")
        forbidden(bob.get, f"/api/v1/namespaces/user-alice/pods/{pod_name}")
        forbidden(bob.get, f"/api/v1/namespaces/user-alice/secrets/{names.secret_name(pod_name)}")
        forbidden(bob.get, f"/apis/coordination.k8s.io/v1/namespaces/user-alice/leases/{pod_name}")
        forbidden(bob.list, "v1", "Pod", "user-alice")

        await backend.release(remote)
        m.wait_for(lambda: m.find("v1", "Pod", pod_name, "user-alice") is None, 60, what="pod gone")
    finally:
        backend.close()
        alice.close()


async def test_gc_as_the_admin_finds_orphans_in_every_users_namespace(tenants: RealMember) -> None:
    m = tenants
    running = {}
    for user in USERS:  # each user's gateway starts a kernel, then dies (its lease is never renewed)
        policy = resolve_policy(parse_policy(POLICY), user, "")
        api = token_client(m, f"user-{user}", "notebook")
        backend = backend_for(policy, api)
        events = await launch_all(backend, launch_spec(policy, api, user))
        assert events[-1].phase == Phase.CONNECTED
        running[user] = events[-1].remote.handle["pod"]
        backend.close()  # no release: the gateway is gone
        api.close()

    admin = token_client(m, "mlp-kernel", "mlp-kernel-gc")
    gc = KubernetesBackend(parse_policy(POLICY), KERNELSPEC, api_clients={"private": admin})
    try:
        orphans = await gc.list_orphans(expire_after_s=0)
        found = {(o.namespace, o.pod) for o in orphans}
        assert found == {(f"user-{u}", running[u]) for u in USERS}, found
        for orphan in orphans:
            await gc.release_record(orphan.record())
        for user in USERS:
            ns, pod = f"user-{user}", running[user]
            m.wait_for(lambda ns=ns, pod=pod: m.find("v1", "Pod", pod, ns) is None, 60, what=f"{pod} gone")
            assert m.find("coordination.k8s.io/v1", "Lease", pod, ns) is None
    finally:
        gc.close()
        admin.close()

    # the notebook servers cannot do this: alice's identity cannot list pods across namespaces
    alice = as_service_account(m, "user-alice", "notebook")
    forbidden(alice.get, "/api/v1/pods")


async def test_a_user_nobody_set_up_is_told_which_namespace_and_what_to_apply(tenants: RealMember) -> None:
    m = tenants
    carol = resolve_policy(parse_policy(POLICY), "Carol", "")
    namespace = carol.members["private"].namespace
    assert namespace == "user-x--43arol"
    admin = m.api_client()  # even the admin's identity: the namespace and its LocalQueue do not exist
    try:
        state = await asyncio.to_thread(state_from_cluster, carol, {"private": admin})
        reason = state.members["private"].reason
        assert not state.members["private"].usable
        assert f"LocalQueue {namespace}/kernels not found" in reason
        assert f"namespace {namespace!r}" in reason and "docs/samples/rbac/per-user" in reason
        backend = backend_for(carol, admin)  # a gateway that launches anyway (a decision from before)
        launch = spec(user="Carol", kernel_id="tenancy-carol")
        with pytest.raises(LaunchError) as err:
            await launch_all(backend, launch)
        message = str(err.value)
        assert f"namespace {namespace!r}" in message and "docs/samples/rbac/per-user" in message, message
        assert "not found (404)" in message
        backend.close()
    finally:
        admin.close()
