"""GPU (auto) under a real JupyterHub whose KubeSpawner runs the single-user servers as pods (issue 15).

test_hub_real.py hands each local server a kubeconfig; here nothing is handed over. The hub runs
docs/samples/jupyterhub/kubespawner_config.py as shipped (tests/hub/hub_config_kube.py changes only what the
test plane cannot honour: the image, the port, the notebook directory) as the sample's ``jupyterhub/hub``
ServiceAccount (kubespawner-rbac.yaml). It creates alice's server as a pod in ``user-alice`` running as
``user-alice/notebook`` (the per-user samples, as shipped); the process kubelet runs the pod's command and
mounts its ServiceAccount token, CA and namespace as a kubelet does; the hub reaches the server at the pod's
address. alice logs in in Chromium and runs a cell of a GPU (auto) notebook whose policy says only
``in_cluster: true`` and ``tenancy: {namespace: "user-{username}"}``: the gateway inside her server pod
creates her kernel pod in ``user-alice`` with the pod's own credentials, labelled with her name and her team
(hub group ``team-vision``, the sample's hook). bob's server pod, with the token it was given, gets 403 on
alice's kernel pod and its Secret. Stopping alice's server through the hub deletes her kernel pod.

The first test is the piece under it: a pod's in-cluster configuration, as the product loads it
(``member_configuration`` of an ``in_cluster`` member, ``identity.server_namespace``), is the pod's
ServiceAccount.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlp_kernel.backends.kubernetes import names
from tests.backend_kubernetes.conftest import free_ports
from tests.ci import require_module
from tests.gateway.conftest import make_kernelspec
from tests.hub.conftest import browser, run_hub  # noqa: F401 (browser is a fixture)
from tests.hub.lab import sign_up_and_log_in, write_notebook

from .members import RealMember
from .rest import Rest
from .test_hub_real import (
    KERNELSPEC,
    NOTEBOOK,
    _kernel_pods,
    _kubeconfig,
    kernel_options,
    run_alices_notebook,
)
from .test_rbac_real import forbidden
from .test_tenancy_real import POLICY, docs, tenant_namespaces, tenants  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(600)

REPO = Path(__file__).resolve().parents[2]
HUB_RBAC = REPO / "docs" / "samples" / "jupyterhub" / "kubespawner-rbac.yaml"
HUB_CONFIG = REPO / "tests" / "hub" / "hub_config_kube.py"
#: the policy of the single-user image: the member is reached with the pod's own ServiceAccount
IN_CLUSTER_POLICY = POLICY.replace("kubeconfig_context: private", "in_cluster: true")
assert "in_cluster: true" in IN_CLUSTER_POLICY

WHO_AM_I = """
import json
from kubernetes import client
from mlp_kernel import identity
from mlp_kernel.backends.kubernetes.members import Connection, member_configuration
from mlp_kernel.placement import parse_policy

member = parse_policy(open("/policy/policy.yaml").read()).members["private"]
api = client.ApiClient(member_configuration(member, Connection()))
review = client.AuthenticationV1Api(api).create_self_subject_review(
    {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
)
pods = client.CoreV1Api(api).list_namespaced_pod(identity.server_namespace())
print(json.dumps({"user": review.status.user_info.username, "namespace": identity.server_namespace(),
                  "pods": sorted(p.metadata.name for p in pods.items)}))
"""


def _server_pod(m: RealMember, user: str) -> dict[str, Any] | None:
    """The single-user server pod KubeSpawner made for ``user`` (its labels), or None."""
    for pod in m.list("v1", "Pod", f"user-{user}"):
        labels = pod["metadata"].get("labels") or {}
        if labels.get("component") == "singleuser-server" and labels.get("hub.jupyter.org/username") == user:
            return pod
    return None


def _running_server(m: RealMember, user: str) -> dict[str, Any]:
    def running() -> dict[str, Any] | None:
        pod = _server_pod(m, user)
        return pod if pod and (pod.get("status") or {}).get("phase") == "Running" else None

    return m.wait_for(running, 150, interval=0.5, what=f"{user}'s server pod Running in user-{user}")


def _as_pod(m: RealMember, pod: dict[str, Any]) -> Rest:
    """A client holding exactly the token the kubelet mounted into ``pod`` (what its server uses)."""
    assert m.kubelet is not None
    token = m.kubelet.service_account_token(pod["metadata"]["namespace"], pod["metadata"]["name"])
    return Rest(m.url, token, str(m.plane.pki.ca))


def _who(rest: Rest) -> str:
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    answer = rest.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", review)
    return str(answer["status"]["userInfo"]["username"])


@pytest.fixture
def hub_identity(tenants: RealMember) -> Iterator[RealMember]:  # noqa: F811 (the fixture imported above)
    """The per-user samples (``tenants``), the hub's ServiceAccount with kubespawner-rbac.yaml: as shipped."""
    m = tenants
    applied = docs(HUB_RBAC)
    try:
        for doc in applied:
            m.apply(doc)
        yield m
    finally:
        for doc in reversed(applied):
            if doc["kind"] in ("ClusterRole", "ClusterRoleBinding", "Namespace"):
                m.delete(doc["apiVersion"], doc["kind"], doc["metadata"]["name"])


def test_a_pods_in_cluster_configuration_is_its_service_account(
    tenants: RealMember,  # noqa: F811
) -> None:
    m = tenants
    policy = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "policy", "namespace": "user-alice"},
    }
    m.apply({**policy, "data": {"policy.yaml": IN_CLUSTER_POLICY}})
    container = {
        "name": "main",
        "image": "python:3.11",
        "command": ["python", "-c", WHO_AM_I],
        "env": [{"name": "PYTHONPATH", "value": str(REPO)}],
        "volumeMounts": [{"name": "policy", "mountPath": "/policy"}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "who-am-i", "namespace": "user-alice"},
        "spec": {
            "serviceAccountName": "notebook",
            "restartPolicy": "Never",
            "containers": [container],
            "volumes": [{"name": "policy", "configMap": {"name": "policy"}}],
        },
    }
    created = m.create(pod)
    # the API server's ServiceAccount admission added the standard token volume; nothing in the test did
    mounts = {v["mountPath"] for v in created["spec"]["containers"][0]["volumeMounts"]}
    assert "/var/run/secrets/kubernetes.io/serviceaccount" in mounts, mounts
    done = m.wait_for_pod_phase("user-alice", "who-am-i", ("Succeeded", "Failed"), timeout=90)
    state = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert done["status"]["phase"] == "Succeeded", state.get("message")
    assert m.kubelet is not None
    (log,) = m.kubelet.root.glob(f"user-alice_who-am-i_{created['metadata']['uid'][:8]}/container.log")
    seen = json.loads(log.read_text().strip().splitlines()[-1])
    assert seen == {
        "user": "system:serviceaccount:user-alice:notebook",
        "namespace": "user-alice",
        "pods": ["who-am-i"],
    }, seen


def test_kubespawner_server_pod_runs_alices_kernel_in_user_alice_as_its_service_account(
    hub_identity: RealMember,
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    require_module("kubespawner", "jupyterhub-kubespawner is not installed (pip install -e '.[test]')")
    m = hub_identity
    base = tmp_path / "hub"
    base.mkdir()
    hub_kubeconfig = base / "hub-kubeconfig"  # the hub's own identity: jupyterhub/hub, nothing more
    hub_kubeconfig.write_text(yaml.safe_dump(_kubeconfig(m, "jupyterhub", "hub")))
    hub_kubeconfig.chmod(0o600)
    make_kernelspec(
        base / "jupyter", KERNELSPEC, IN_CLUSTER_POLICY, kubernetes=kernel_options(), log_level="INFO"
    )
    spare = list(free_ports().values())  # every pod is 127.0.0.1 here: a port of its own per server
    hub_env = {
        "KUBECONFIG": str(hub_kubeconfig),
        "MLP_HUB_SERVER_PORTS": json.dumps({"alice": spare[0], "bob": spare[1]}),
        "MLP_HUB_REPO": str(REPO),
    }
    with run_hub(base, config=HUB_CONFIG, hub_env=hub_env) as hub:
        write_notebook(hub.home("alice") / NOTEBOOK, KERNELSPEC, ["print('answer', 6 * 7)", "%gpu"])
        hub.home("bob").mkdir(parents=True)  # the notebook directory must exist (a volume, in a real image)
        code, body = hub.api("POST", "/hub/api/users/bob/server")  # bob's server starts meanwhile
        assert code in (201, 202), body
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        sign_up_and_log_in(page, hub, "alice")

        # KubeSpawner made her server a pod in her namespace, as her ServiceAccount, with no kubeconfig
        server = _running_server(m, "alice")
        spec = server["spec"]
        assert spec["serviceAccountName"] == "notebook" and spec["nodeName"].startswith("private-")
        env = {e["name"]: e.get("value") for e in spec["containers"][0].get("env") or []}
        assert env.get("JUPYTERHUB_USER") == "alice" and env.get("MLP_KERNEL_TEAM") == "vision", env
        assert "KUBECONFIG" not in env, env
        alice_server = _as_pod(m, server)
        assert _who(alice_server) == "system:serviceaccount:user-alice:notebook"

        pod = run_alices_notebook(page, hub, m)  # alice's kernel pod: in user-alice, her name and team
        assert not _kernel_pods(m, "user-bob") and not _kernel_pods(m, "jupyterhub")
        pod_name = pod["metadata"]["name"]
        # her server's own identity may read it (it made it), bob's server's may not
        assert (
            alice_server.get(f"/api/v1/namespaces/user-alice/pods/{pod_name}")["metadata"]["name"] == pod_name
        )
        bob = _as_pod(m, _running_server(m, "bob"))
        assert _who(bob) == "system:serviceaccount:user-bob:notebook"
        forbidden(bob.get, f"/api/v1/namespaces/user-alice/pods/{pod_name}")
        forbidden(bob.get, f"/api/v1/namespaces/user-alice/secrets/{names.secret_name(pod_name)}")
        forbidden(bob.get, "/api/v1/namespaces/user-alice/pods")
        context.close()

        # alice stops her server (the hub's "Stop My Server"): KubeSpawner deletes the server pod, the server
        # shuts its kernels down, and the gateway deletes the kernel pod
        code, body = hub.api("DELETE", "/hub/api/users/alice/server")
        assert code in (202, 204), body
        m.wait_for(
            lambda: not _kernel_pods(m, "user-alice"), 90, what="alice's kernel pod gone with her server"
        )
        m.wait_for(lambda: _server_pod(m, "alice") is None, 90, what="alice's server pod gone")
