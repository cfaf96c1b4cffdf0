"""GPU (auto) in a Kubeflow notebook server, end to end on the real control plane (issue 15, identity).

What Kubeflow makes, made here: the Profile's namespace ``kubeflow-user-alice`` (the profile controller's
labels and ``owner`` annotation) with its ServiceAccount ``default-editor``, and alice's notebook server as
a pod in it, shaped as the notebook controller shapes it (``NB_PREFIX=/notebook/<namespace>/<name>``, the
server's base URL, no token: Istio authenticates). The process kubelet runs that pod: the real API server's
ServiceAccount admission mounts ``default-editor``'s token, and the product, inside, reaches the API server
in-cluster (the policy's member says ``in_cluster: true`` and ``tenancy: {namespace: "{username}"}``). What
mlp-kernel needs in the Profile namespace is the per-user sample (docs/samples/rbac/per-user/user-alice.yaml)
with the Profile's namespace and ServiceAccount (docs/admin-guide.md, "Kubeflow").

Requests reach the server only through a real reverse proxy (Debian's nginx), which sets ``kubeflow-userid``
as Istio's authservice does, replacing what the client sent. A cell run through it starts a GPU (auto) kernel
whose pod real Kueue admits from ``kubeflow-user-alice/kernels``; the user is the Profile's namespace
(``mlp_kernel.identity.kubeflow_user``: the one name the server's token is bound to). What the client or the
notebook's own spec can set (a ``kubeflow-userid`` header of its own, ``KERNEL_USERNAME``/``KERNEL_TEAM`` in
the kernel start request, ``KERNEL_USERNAME`` in the Notebook's env, which a Profile's user may edit) changes
nothing.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from mlp_kernel.backends.kubernetes import names
from tests.backend_kubernetes.conftest import free_ports
from tests.gateway.conftest import make_kernelspec

from .members import RealMember, RealMembers
from .plane import free_port
from .test_rbac_real import SAMPLES
from .test_tenancy_real import POLICY as TENANCY_POLICY

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
PROFILE = "kubeflow-user-alice"
OWNER = "alice@example.com"
NOTEBOOK = "alice-nb"
NB_PREFIX = f"/notebook/{PROFILE}/{NOTEBOOK}"
KERNELSPEC = "gpu-kubeflow"
SPOOF = "mallory"
XSRF = "0123456789abcdef"  # the server has no token (Kubeflow's); its XSRF check wants cookie == header
# test_tenancy_real's policy, its member reaching the API server in-cluster with a namespace per Profile
POLICY = yaml.safe_dump(
    {
        **yaml.safe_load(TENANCY_POLICY),
        "members": {
            "private": {
                "backend": "kubernetes",
                "in_cluster": True,
                "tenancy": {"namespace": "{username}", "local_queue": "kernels"},
            }
        },
    }
)


def profile_docs() -> list[dict[str, Any]]:
    """The Profile's namespace and ServiceAccount (the profile controller's), then the per-user sample for
    that namespace: its objects moved to the Profile's namespace, bound to ``default-editor``."""
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": PROFILE,
            "annotations": {"owner": OWNER},
            "labels": {"app.kubernetes.io/part-of": "kubeflow-profile", "istio-injection": "enabled"},
        },
    }
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "default-editor", "namespace": PROFILE},
    }
    docs = [namespace, account]
    for doc in yaml.safe_load_all((SAMPLES / "user-alice.yaml").read_text()):
        if not doc or doc["kind"] in ("Namespace", "ServiceAccount"):
            continue
        meta = doc["metadata"]
        if meta.get("namespace") == "user-alice":
            meta["namespace"] = PROFILE
        if doc["kind"] == "ClusterRoleBinding":
            meta["name"] = f"mlp-kernel-kueue-reader-{PROFILE}"
            doc["subjects"] = [{**s, "name": f"system:serviceaccounts:{PROFILE}"} for s in doc["subjects"]]
        if doc["kind"] == "RoleBinding":
            doc["subjects"] = [{"kind": "ServiceAccount", "name": "default-editor", "namespace": PROFILE}]
        docs.append(doc)
    return docs


@pytest.fixture
def profile(real_kube_members: RealMembers) -> Iterator[RealMember]:
    m = real_kube_members.private
    applied = [d for d in yaml.safe_load_all((SAMPLES / "kueue-reader.yaml").read_text()) if d]
    applied += profile_docs()
    try:
        for doc in applied:
            m.apply(doc)
        yield m
    finally:
        m.rest.request("DELETE", f"/api/v1/namespaces/{PROFILE}/pods", query={"gracePeriodSeconds": "0"})
        for doc in reversed(applied):
            if doc["kind"] in ("ClusterRole", "ClusterRoleBinding", "Namespace"):
                m.delete(doc["apiVersion"], doc["kind"], doc["metadata"]["name"])
        # not waited for (>= 5 s): an apply of the namespace waits for it (RealMember.apply)


NGINX_CONF = """
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port};
        # Istio's authservice: the authenticated user, whatever the client put in this header
        location {prefix}/ {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header kubeflow-userid "{owner}";
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 600s;
        }}
    }}
}}
"""


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """nginx in front of the notebook server's port (returned): ``(url, upstream port)``."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).exists(), "nginx is missing: apt-get install -y nginx (.ci/run installs it)"
    root = tmp_path / "nginx"
    root.mkdir()
    port, upstream = free_port(), free_port()
    conf = NGINX_CONF.format(root=root, port=port, prefix=NB_PREFIX, upstream=upstream, owner=OWNER)
    (root / "nginx.conf").write_text(conf)
    proc = subprocess.Popen([nginx, "-p", str(root), "-c", str(root / "nginx.conf")])
    try:
        wait_port(port, "nginx", proc)
        yield f"http://127.0.0.1:{port}", upstream
    finally:
        proc.terminate()
        proc.wait(30)


def wait_port(port: int, what: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{what} exited with {proc.returncode}"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not listen on port {port} within {timeout:g} s")


def notebook_pod(base: Path, port: int) -> dict[str, Any]:
    """alice's notebook server as Kubeflow's notebook controller makes its pod (a StatefulSet's), with a
    ``KERNEL_USERNAME`` a Profile's user may put in the Notebook's env to pose as someone else."""
    argv = [
        sys.executable, "-m", "jupyter_server", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", f"--ServerApp.base_url={NB_PREFIX}", "--ServerApp.token=",
        "--ServerApp.password=", "--ServerApp.allow_origin=*", "--ServerApp.allow_root=True",
        "--ServerApp.open_browser=False", f"--ServerApp.root_dir={base / 'home'}",
    ]  # fmt: skip
    env = {
        "NB_PREFIX": NB_PREFIX,
        "PYTHONPATH": str(ROOT),
        "JUPYTER_PATH": str(base / "jupyter"),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "MLP_KERNEL_AUDIT_LOG": "off",
        "KERNEL_USERNAME": SPOOF,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{NOTEBOOK}-0",
            "namespace": PROFILE,
            "labels": {"notebook-name": NOTEBOOK, "statefulset": NOTEBOOK, "app": NOTEBOOK},
        },
        "spec": {
            "serviceAccountName": "default-editor",
            "tolerations": [{"operator": "Exists"}],
            "containers": [
                {
                    "name": NOTEBOOK,
                    "image": "kubeflownotebookswg/jupyter-scipy:v1.9.0",
                    "command": argv,
                    "env": [{"name": k, "value": v} for k, v in env.items()],
                    "ports": [{"name": "notebook-port", "containerPort": port, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
                }
            ],
        },
    }


def _kernel_pods(m: RealMember) -> list[dict[str, Any]]:
    """Every kernel pod of the member, in any namespace."""
    return [
        p
        for p in m.list("v1", "Pod")
        if (p["metadata"].get("labels") or {}).get(names.MANAGED_BY) == names.MANAGED_BY_VALUE
    ]


def _headers() -> dict[str, str]:
    """What a client sends: its own ``kubeflow-userid`` (the proxy replaces it) and the XSRF pair."""
    return {"kubeflow-userid": f"{SPOOF}@example.com", "Cookie": f"_xsrf={XSRF}", "X-XSRFToken": XSRF}


async def _wait_for_server(url: str, m: RealMember, timeout: float = 180) -> None:
    client = AsyncHTTPClient()
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            r = await client.fetch(
                f"{url}{NB_PREFIX}/api/kernelspecs", headers=_headers(), request_timeout=10
            )
            if KERNELSPEC in json.loads(r.body)["kernelspecs"]:
                return
            last = f"kernelspec {KERNELSPEC} not listed"
        except (HTTPClientError, OSError) as e:
            last = str(e)
        await asyncio.sleep(0.5)
    pod = m.find("v1", "Pod", f"{NOTEBOOK}-0", PROFILE) or {}
    raise AssertionError(
        f"alice's notebook server did not answer through the proxy within {timeout:g} s ({last}); "
        f"pod status: {json.dumps(pod.get('status', {}))[:2000]}"
    )


async def _execute(ws: WebSocketClientConnection, code: str, timeout: float) -> str:
    """Run ``code`` over the kernel's websocket (Jupyter's JSON protocol); its text output."""
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "msg_type": "execute_request", "username": SPOOF, "session": "kf",
              "date": "2026-12-05T12:00:00Z", "version": "5.3"}  # fmt: skip
    content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
               "allow_stdin": False, "stop_on_error": True}  # fmt: skip
    message = {"header": header, "parent_header": {}, "metadata": {}, "content": content, "channel": "shell"}
    await ws.write_message(json.dumps(message))
    out: list[str] = []
    replied = idle = False
    deadline = time.monotonic() + timeout
    while not (replied and idle):
        left = deadline - time.monotonic()
        assert left > 0, f"no reply to {code!r} within {timeout:g} s; output so far: {''.join(out)!r}"
        raw = await asyncio.wait_for(ws.read_message(), left)
        assert raw is not None, f"the kernel's websocket closed while running {code!r}: {''.join(out)!r}"
        msg = json.loads(raw)
        if (msg.get("parent_header") or {}).get("msg_id") != msg_id:
            continue
        kind, body = msg["msg_type"], msg["content"]
        if kind == "stream":
            out.append(body["text"])
        elif kind in ("execute_result", "display_data"):
            out.append(body["data"].get("text/plain", ""))
        elif kind == "error":
            out.append("\n".join(body["traceback"]))
        elif kind == "execute_reply":
            replied = True
        elif kind == "status" and body["execution_state"] == "idle":
            idle = True
    return "".join(out)


async def test_alices_kubeflow_notebook_runs_its_kernel_in_her_profile_namespace(
    profile: RealMember, proxy: tuple[str, int], tmp_path: Path
) -> None:
    m = profile
    url, port = proxy
    base = tmp_path / "kubeflow"
    (base / "home").mkdir(parents=True)
    options = {
        "ports": free_ports(),
        "tick_s": 0.2,
        "queue_refresh_s": 0.5,
        "timeouts": {"queued_s": 180, "scheduling_s": 60, "pulling_s": 60, "connecting_s": 60},
    }
    make_kernelspec(base / "jupyter", KERNELSPEC, POLICY, kubernetes=options, log_level="INFO")
    m.create(notebook_pod(base, port))
    await _wait_for_server(url, m)

    client = AsyncHTTPClient()
    body = json.dumps({"name": KERNELSPEC, "env": {"KERNEL_USERNAME": SPOOF, "KERNEL_TEAM": "spoofed"}})
    r = await client.fetch(
        f"{url}{NB_PREFIX}/api/kernels", method="POST", body=body, headers=_headers(), request_timeout=60
    )
    kernel_id = json.loads(r.body)["id"]
    ws_url = url.replace("http://", "ws://") + f"{NB_PREFIX}/api/kernels/{kernel_id}/channels"
    ws = await websocket_connect(HTTPRequest(ws_url, headers=_headers(), connect_timeout=60))
    try:
        assert "answer 42" in await _execute(ws, "print('answer', 6 * 7)", 300)
        status_text = await _execute(ws, "%gpu", 60)
        assert f"user:   {PROFILE}" in status_text, status_text
        assert SPOOF not in status_text, status_text
    finally:
        ws.close()

    (pod,) = _kernel_pods(m)
    meta, labels = pod["metadata"], pod["metadata"]["labels"]
    assert meta["namespace"] == PROFILE
    assert (labels[names.USER], labels[names.QUEUE_NAME]) == (PROFILE, "kernels")
    assert SPOOF not in json.dumps(labels) and "spoofed" not in json.dumps(labels)
    assert pod["spec"]["nodeName"].startswith("private-")
    server_pod = m.get("v1", "Pod", f"{NOTEBOOK}-0", PROFILE)
    assert server_pod["spec"]["serviceAccountName"] == "default-editor"
    access = [v for v in server_pod["spec"]["volumes"] if v["name"].startswith("kube-api-access-")]
    assert access, "the API server mounted no ServiceAccount token into the notebook pod"

    # alice shuts the notebook's kernel down through the proxy: its GPU pod goes with it
    await client.fetch(
        f"{url}{NB_PREFIX}/api/kernels/{kernel_id}", method="DELETE", headers=_headers(), request_timeout=60
    )
    m.wait_for(lambda: not _kernel_pods(m), 90, what="the kernel pod gone with its kernel")
