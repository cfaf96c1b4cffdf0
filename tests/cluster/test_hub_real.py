"""GPU (auto) under a real JupyterHub, with the kernel pod on the real control plane in the user's namespace.

The Kubernetes variant of tests/hub/test_hub_e2e.py (issue 15, "JupyterHub, end to end"). The per-user samples
are applied as shipped (test_tenancy_real's ``tenants``); each user's single-user server gets a kubeconfig
holding a token of its own ServiceAccount, ``user-<name>/notebook`` (what a KubeSpawner pod with that
ServiceAccount has), and the GPU (auto) kernelspec's policy names no namespace, only
``tenancy: {namespace: "user-{username}"}``. alice logs in through the hub in Chromium and runs a cell: real
Kueue admits her kernel pod from ``user-alice/kernels``, the process kubelet runs it, and the pod carries her
name and her team (the sample ``pre_spawn_hook``: hub group ``team-vision``). bob's server identity gets 403
on it; stopping her server through the hub deletes the pod.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlp_kernel.backends.kubernetes import names
from tests.backend_kubernetes.conftest import free_ports
from tests.gateway.conftest import make_kernelspec
from tests.hub.conftest import browser, run_hub  # noqa: F401 (browser is a fixture)
from tests.hub.lab import open_notebook, run_cell, sign_up_and_log_in, write_notebook

from .members import RealMember
from .test_rbac_real import USERS, as_service_account, forbidden
from .test_tenancy_real import POLICY, tenant_namespaces, tenants  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(600)

KERNELSPEC = "gpu-kube"
NOTEBOOK = "kube.ipynb"


def _kubeconfig(m: RealMember, namespace: str, account: str) -> dict[str, Any]:
    """A kubeconfig (context ``private``, as the policy names it) with a token of that ServiceAccount."""
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token"
    token = m.rest.request("POST", path, request)["status"]["token"]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "private", "cluster": {"server": m.url, "certificate-authority": str(m.plane.pki.ca)}}
        ],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "private", "context": {"cluster": "private", "user": account}}],
        "current-context": "private",
    }


def kernel_options() -> dict[str, Any]:
    """The kernelspec's ``kubernetes`` settings for a kernel pod on the test plane (ports of its own)."""
    return {
        "ports": free_ports(),
        "tick_s": 0.2,
        "queue_refresh_s": 0.5,
        "timeouts": {"queued_s": 180, "scheduling_s": 60, "pulling_s": 60, "connecting_s": 60},
    }


def run_alices_notebook(page: Any, hub: Any, m: RealMember) -> dict[str, Any]:
    """alice opens NOTEBOOK and runs its cells; her one kernel pod, in user-alice with her name and team."""
    open_notebook(page, hub, "alice", NOTEBOOK)
    assert "answer 42" in run_cell(page, 0, "answer 42", timeout_s=300)
    status_text = run_cell(page, 1, "GPU (auto): running")
    assert "user:   alice" in status_text and "private" in status_text, status_text
    (pod,) = _kernel_pods(m, "user-alice")
    labels = pod["metadata"]["labels"]
    assert (labels[names.USER], labels[names.TEAM], labels[names.QUEUE_NAME]) == (
        "alice",
        "vision",
        "kernels",
    )
    assert pod["spec"]["nodeName"].startswith("private-")
    return pod


def _kernel_pods(m: RealMember, namespace: str) -> list[dict[str, Any]]:
    return [
        p
        for p in m.list("v1", "Pod", namespace)
        if (p["metadata"].get("labels") or {}).get(names.MANAGED_BY) == names.MANAGED_BY_VALUE
    ]


def test_alices_hub_notebook_runs_its_kernel_in_user_alice(
    tenants: RealMember,  # noqa: F811 (the fixture imported above)
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    m = tenants
    base = tmp_path / "hub"
    for user in USERS:
        kubeconfig = base / "users" / user / "kubeconfig"
        kubeconfig.parent.mkdir(parents=True)
        kubeconfig.write_text(yaml.safe_dump(_kubeconfig(m, f"user-{user}", "notebook")))
        kubeconfig.chmod(0o600)
    make_kernelspec(base / "jupyter", KERNELSPEC, POLICY, kubernetes=kernel_options(), log_level="INFO")
    user_env = {"KUBECONFIG": str(base / "users" / "{username}" / "kubeconfig")}
    with run_hub(base, user_env) as hub:
        write_notebook(hub.home("alice") / NOTEBOOK, KERNELSPEC, ["print('answer', 6 * 7)", "%gpu"])
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        sign_up_and_log_in(page, hub, "alice")
        pod = run_alices_notebook(page, hub, m)
        assert not _kernel_pods(m, "jupyter") and not _kernel_pods(m, "user-bob")
        pod_name = pod["metadata"]["name"]
        bob = as_service_account(m, "user-bob", "notebook")
        forbidden(bob.get, f"/api/v1/namespaces/user-alice/pods/{pod_name}")
        forbidden(bob.get, f"/api/v1/namespaces/user-alice/secrets/{names.secret_name(pod_name)}")
        context.close()
        # alice stops her server (the hub's "Stop My Server"): it shuts its kernels down, the pod goes too.
        code, body = hub.api("DELETE", "/hub/api/users/alice/server")
        assert code in (202, 204), body
        m.wait_for(
            lambda: not _kernel_pods(m, "user-alice"), 90, what="alice's kernel pod gone with her server"
        )
