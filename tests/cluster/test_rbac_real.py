"""Namespace per user (docs/samples/rbac/per-user) on the real API server's RBAC authorizer.

``user-alice.yaml`` and ``user-bob.yaml`` are applied as shipped on the private member. Then every request is
made AS the notebook server's ServiceAccount, with a bound token from the TokenRequest API (what a pod of that
ServiceAccount gets): alice's server creates, reads and deletes a kernel pod the product renders and its
connection Secret (owned by the pod, as the backend makes it) in ``user-alice``; in ``user-bob`` the same
server gets 403 for reading, listing, watching, creating, deleting or exec'ing into bob's kernel pod and for
reading bob's Secret, and ``SelfSubjectAccessReview`` gives the same answers. Kueue's webhooks admit the
LocalQueue of each namespace and gate the pod as usual. The last test shows the limit the admin guide states:
in one shared namespace, another server's identity bound to the same Role reads bob's Secret by name.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlp_kernel.backends.kubernetes.connection import CONNECTION_KEY
from mlp_kernel.backends.kubernetes.objects import render_kernel_objects
from mlp_kernel.placement import parse_policy
from tests.backend_kubernetes.policies import KERNELSPEC

from .fixtures import samples_for_module
from .members import RealMember, RealMembers
from .rest import ApiError, Obj, Rest

pytestmark = pytest.mark.timeout(240)

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples" / "rbac" / "per-user"
USERS = ("alice", "bob")


def policy_for(user: str) -> Any:
    """The policy a namespace-per-user product would use for ``user`` (issue 15: docs/design.md,
    "Tenancy"): the member's namespace is the user's."""
    return parse_policy(f"""
version: 1
tiers: [silver]
members:
  private: {{backend: kubernetes, namespace: user-{user}, local_queue: kernels, kubeconfig_context: private}}
flavors:
  silver: {{member: private, tier: silver, gpu_models: [V100], node_labels: {{mlp.io/gpu-tier: silver}},
           price_per_gpu_hour: 0}}
""")


def kernel_objects(user: str) -> tuple[Obj, Obj]:
    return render_kernel_objects(
        KERNELSPEC, policy_for(user), "private", "silver", user, kernel_id=f"k-{user}"
    )


def as_service_account(m: RealMember, namespace: str, name: str) -> Rest:
    """A client that authenticates as the ServiceAccount (a bound token from the TokenRequest API)."""
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"
    token = m.rest.request("POST", path, request)["status"]["token"]
    return Rest(m.url, token, str(m.plane.pki.ca))


def forbidden(call: Any, *args: Any, **kw: Any) -> str:
    with pytest.raises(ApiError) as err:
        call(*args, **kw)
    assert err.value.status == 403, err.value
    return str(err.value)


def allowed(rest: Rest, namespace: str, verb: str, resource: str, subresource: str = "") -> bool:
    """The server's answer to ``SelfSubjectAccessReview`` (what ``kubectl auth can-i`` asks)."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "namespace": namespace,
                "verb": verb,
                "resource": resource,
                "subresource": subresource,
            }
        },
    }
    return bool(rest.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review)
                ["status"].get("allowed"))  # fmt: skip


def create_kernel(rest: Rest, user: str) -> tuple[Obj, Obj]:
    """Pod first, then its Secret owned by it: what the backend does (backend.py)."""
    secret, pod = kernel_objects(user)
    created = rest.create(pod)
    meta = created["metadata"]
    secret["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}
    ]
    return created, rest.create(secret)


def user_docs() -> list[Obj]:
    return [d for user in USERS for d in yaml.safe_load_all((SAMPLES / f"user-{user}.yaml").read_text()) if d]


user_namespaces = samples_for_module(user_docs)


@pytest.fixture
def tenants(user_namespaces: None, real_kube_members: RealMembers) -> Iterator[RealMember]:
    """The per-user samples applied for each test (the reset between tests deletes their LocalQueues)."""
    m = real_kube_members.private
    for doc in user_docs():
        m.apply(doc)
    yield m


def test_each_users_server_runs_kernels_in_its_own_namespace_only(tenants: RealMember) -> None:
    m = tenants
    alice = as_service_account(m, "user-alice", "notebook")
    bob = as_service_account(m, "user-bob", "notebook")

    # alice's server: the backend's whole cycle in user-alice
    pod, secret = create_kernel(alice, "alice")
    name, ns = pod["metadata"]["name"], "user-alice"
    assert "kueue.x-k8s.io/admission" in [g["name"] for g in pod["spec"].get("schedulingGates") or []]
    assert alice.get(f"/api/v1/namespaces/{ns}/pods/{name}")["metadata"]["uid"] == pod["metadata"]["uid"]
    read = alice.get(f"/api/v1/namespaces/{ns}/secrets/{secret['metadata']['name']}")
    assert json.loads(base64.b64decode(read["data"][CONNECTION_KEY]))["key"]
    assert alice.list("v1", "Pod", ns, labelSelector="app.kubernetes.io/managed-by=mlp-kernel")

    # bob's kernel, made by bob's server
    bob_pod, bob_secret = create_kernel(bob, "bob")
    bob_name, bob_ns = bob_pod["metadata"]["name"], "user-bob"

    # alice's server against bob's namespace: every read and write is refused by RBAC
    who = "system:serviceaccount:user-alice:notebook"
    message = forbidden(alice.get, f"/api/v1/namespaces/{bob_ns}/pods/{bob_name}")
    assert f'User "{who}" cannot get resource "pods"' in message and 'namespace "user-bob"' in message
    forbidden(alice.list, "v1", "Pod", bob_ns)
    forbidden(alice.get, f"/api/v1/namespaces/{bob_ns}/pods", watch="true")
    forbidden(alice.get, f"/api/v1/namespaces/{bob_ns}/secrets/{bob_secret['metadata']['name']}")
    forbidden(alice.list, "v1", "Secret", bob_ns)
    forbidden(alice.delete, "v1", "Pod", bob_name, bob_ns)
    exec_path = f"/api/v1/namespaces/{bob_ns}/pods/{bob_name}/exec"
    message = forbidden(alice.request, "POST", exec_path, query={"command": "cat", "stdout": "true"})
    assert 'cannot create resource "pods/exec"' in message
    theirs, _ = kernel_objects("bob")
    forbidden(alice.create, theirs)  # nor can alice's server start kernels in bob's namespace
    assert bob.get(f"/api/v1/namespaces/{bob_ns}/pods/{bob_name}"), "bob's kernel is still there"

    # least privilege in its own namespace too: no list of Secrets, no exec (the backend needs neither)
    forbidden(alice.list, "v1", "Secret", ns)
    forbidden(alice.request, "POST", f"/api/v1/namespaces/{ns}/pods/{name}/exec", query={"command": "cat"})

    # kubectl auth can-i, as alice's server
    assert allowed(alice, ns, "create", "pods") and allowed(alice, ns, "get", "secrets")
    assert not allowed(alice, ns, "list", "secrets") and not allowed(alice, ns, "create", "pods", "exec")
    for verb, resource, sub in [("get", "pods", ""), ("list", "pods", ""), ("create", "pods", "exec"),
                                ("get", "secrets", ""), ("create", "pods", "")]:  # fmt: skip
        assert not allowed(alice, bob_ns, verb, resource, sub), (verb, resource, sub)

    # release: the pod goes, and its Secret with it (the owner reference, real garbage collector)
    alice.delete("v1", "Pod", name, ns, gracePeriodSeconds=0)
    m.wait_for(lambda: m.find("v1", "Secret", secret["metadata"]["name"], ns) is None, 60, what="Secret GC'd")


def test_the_per_user_role_is_the_shared_launcher_role(tenants: RealMember) -> None:
    """The per-user samples grant exactly what docs/samples/rbac/kernel-launcher.yaml grants: no more."""
    shared = [
        d
        for d in yaml.safe_load_all((SAMPLES.parent / "kernel-launcher.yaml").read_text())
        if d and d["kind"] == "Role"
    ]
    for user in USERS:
        role = tenants.get("rbac.authorization.k8s.io/v1", "Role", "mlp-kernel-launcher", f"user-{user}")
        assert role["rules"] == shared[0]["rules"]
        queue = tenants.get("kueue.x-k8s.io/v1beta2", "LocalQueue", "kernels", f"user-{user}")
        assert queue["spec"]["clusterQueue"] == "gpu-private"


def test_in_one_shared_namespace_rbac_cannot_keep_users_apart(real_kube_members: RealMembers) -> None:
    """Why the per-user layout exists: with the shared sample (kernel-launcher.yaml, namespace jupyter) and
    alice's server added to its subjects under an identity of its own, as the sample's comment says to, that
    identity reads bob's kernel Secret (its key) by name: RBAC has no rule for "only your own"."""
    m = real_kube_members.private
    launcher = [d for d in yaml.safe_load_all((SAMPLES.parent / "kernel-launcher.yaml").read_text()) if d]
    alice = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "alice", "namespace": "jupyter"}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "mlp-kernel-launcher-alice", "namespace": "jupyter"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "mlp-kernel-launcher",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "alice", "namespace": "jupyter"}],
        },
    ]
    applied = launcher + alice
    for doc in applied:
        m.apply(doc)
    secret, _pod = render_kernel_objects(
        KERNELSPEC, policy_for("bob"), "private", "silver", "bob", kernel_id="k-bob-shared"
    )
    secret["metadata"]["namespace"] = "jupyter"  # bob's kernel, in the shared namespace
    try:
        m.create(secret)
        server = as_service_account(m, "jupyter", "alice")
        read = server.get(f"/api/v1/namespaces/jupyter/secrets/{secret['metadata']['name']}")
        assert json.loads(base64.b64decode(read["data"][CONNECTION_KEY]))["key"], "bob's kernel key"
        forbidden(server.list, "v1", "Secret", "jupyter")  # listing is refused, reading by name is not
    finally:
        m.delete("v1", "Secret", secret["metadata"]["name"], "jupyter")
        for doc in reversed(applied):
            meta = doc["metadata"]
            m.delete(doc["apiVersion"], doc["kind"], meta["name"], meta.get("namespace"))
