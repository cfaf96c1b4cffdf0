"""Who the user is: the server's own identity, never ``KERNEL_USERNAME``/``KERNEL_TEAM`` of a start request.

A Jupyter Kernel Gateway copies every ``KERNEL_*`` variable of a ``POST /api/kernels`` body's ``env`` into the
kernel's environment, so any client that can reach it could name itself someone else: that name becomes pod
labels, the template's ``kernel_username``, the snapshot directory and the bucket prefix. Here a real kernel
gateway runs as "alice" (``JUPYTERHUB_USER`` in its own environment, as JupyterHub's spawner sets it) and a
client tries to start a GPU (auto) kernel as "mallory".
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from mlp_kernel.provisioner import GpuAutoProvisioner

from .conftest import KERNEL, free_port, install_kernelspec
from .test_gateway_mode import BIN, _api, _start, _stop, _wait_http

IMPERSONATION = {
    "KERNEL_USERNAME": "mallory",
    "KERNEL_TEAM": "evil-team",
    "JUPYTERHUB_USER": "mallory",
    "MLP_KERNEL_CONFIG": json.dumps({"user": "mallory"}),
    "MLP_KERNEL_FDS": '{"shell": 0}',
}


def _wait_file(path: Path, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            time.sleep(0.2)
    raise TimeoutError(f"{path} did not appear in {timeout} s")


def _server_env(tmp_path: Path, spec_dir: Path) -> dict[str, str]:
    """A server's environment with the test kernelspec in ``spec_dir``, and nothing a user could have set."""
    install_kernelspec(spec_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "KERNEL_", "MLP_KERNEL_"))}
    env.update(
        JUPYTER_PATH=str(spec_dir),
        JUPYTER_RUNTIME_DIR=str(spec_dir / "runtime"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        IPYTHONDIR=str(tmp_path / "ipython"),
    )
    return env


def _gateway_env(connection_file_part: str) -> dict[str, str]:
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "mlp_kernel.gateway" in cmd and connection_file_part in cmd:
            return p.environ()
    raise LookupError(f"no gateway process for {connection_file_part}")


async def test_a_start_request_cannot_choose_the_user_or_team(tmp_path: Path, reaper: Path) -> None:
    kg_dir = tmp_path / "kg"
    env = _server_env(tmp_path, kg_dir)
    env.update(
        JUPYTERHUB_USER="alice",
        MLP_KERNEL_TEAM="vision",
        KG_AUTH_TOKEN="client-test-token",
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "kernelgateway.log"
    proc = _start(
        [
            str(BIN / "jupyter"),
            "kernelgateway",
            "--KernelGatewayApp.ip=127.0.0.1",
            f"--KernelGatewayApp.port={port}",
            "--KernelGatewayApp.port_retries=0",
        ],
        env,
        log,
    )
    try:
        _wait_http(f"{url}/api", proc, log)
        code, model = await _api("POST", f"{url}/api/kernels", {"name": KERNEL, "env": IMPERSONATION})
        assert code == 201, (model, log.read_text())
        status = _wait_file(kg_dir / "runtime" / f"mlp-kernel-status-{model['id']}.json")
        assert status["user"] == "alice"
        gateway_env = _gateway_env(model["id"])
        assert gateway_env["KERNEL_USERNAME"] == "alice"
        assert gateway_env["KERNEL_TEAM"] == "vision"
        config = json.loads(gateway_env["MLP_KERNEL_CONFIG"])
        assert (config["user"], config["team"]) == ("alice", "vision")
        assert gateway_env.get("MLP_KERNEL_FDS") != IMPERSONATION["MLP_KERNEL_FDS"]
        code, _ = await _api("DELETE", f"{url}/api/kernels/{model['id']}")
        assert code == 204
    finally:
        _stop(proc)


def test_the_provisioner_ignores_the_kernel_environment_for_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    monkeypatch.delenv("MLP_KERNEL_TEAM", raising=False)
    prov = GpuAutoProvisioner(kernel_id="k1", kernel_spec=None)
    config = prov.gateway_config(dict(IMPERSONATION))
    assert (config.user, config.team) == ("alice", "")
    prov.user, prov.team = "carol", "vision"  # an admin's explicit setting wins over the environment
    config = prov.gateway_config(dict(IMPERSONATION))
    assert (config.user, config.team) == ("carol", "vision")


def test_the_service_account_directory_is_the_servers_never_the_start_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``MLP_SERVICE_ACCOUNT_DIR`` (the pod's token, CA and namespace) reaches the gateway from the server's
    own environment; a start request's value is dropped, whether the server sets one or not."""
    from mlp_kernel.identity import SERVICE_ACCOUNT_DIR_ENV
    from mlp_kernel.provisioner import gateway_environment

    request = {**IMPERSONATION, SERVICE_ACCOUNT_DIR_ENV: "/home/mallory/fake-serviceaccount", "A": "b"}
    monkeypatch.delenv(SERVICE_ACCOUNT_DIR_ENV, raising=False)
    env = gateway_environment(request)
    assert SERVICE_ACCOUNT_DIR_ENV not in env and "MLP_KERNEL_FDS" not in env and env["A"] == "b"
    monkeypatch.setenv(SERVICE_ACCOUNT_DIR_ENV, "/pods/alice/serviceaccount")
    assert gateway_environment(request)[SERVICE_ACCOUNT_DIR_ENV] == "/pods/alice/serviceaccount"


def test_the_gateway_never_reads_the_user_from_its_environment() -> None:
    from mlp_kernel.gateway.config import GatewayConfig
    from mlp_kernel.identity import os_user

    environ = {"KERNEL_USERNAME": "mallory", "JUPYTERHUB_USER": "mallory", "USER": "mallory"}
    assert GatewayConfig.from_env(environ).user == os_user() != "mallory"


def test_in_a_kubeflow_notebook_pod_the_user_is_its_profile_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kubeflow: the namespace the kubelet wrote into the pod (its ServiceAccount mount), which RBAC binds the
    server's token to; ``NB_PREFIX`` (set by the notebook controller) must agree. A kernel's environment,
    which a client sets, changes nothing: neither its NB_PREFIX nor its KERNEL_USERNAME."""
    from mlp_kernel import identity

    mount = tmp_path / "namespace"
    mount.write_text("kubeflow-alice\n")
    monkeypatch.setattr(identity, "NAMESPACE_FILE", str(mount))
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    monkeypatch.setenv("NB_PREFIX", "/notebook/kubeflow-alice/my-notebook")
    assert identity.server_namespace() == "kubeflow-alice"
    prov = GpuAutoProvisioner(kernel_id="k1", kernel_spec=None)
    kernel_env = {**IMPERSONATION, "NB_PREFIX": "/notebook/kubeflow-mallory/x"}
    assert prov.gateway_config(kernel_env).user == "kubeflow-alice"

    monkeypatch.setenv("NB_PREFIX", "/notebook/kubeflow-mallory/x")  # disagrees with the mount: not trusted
    assert identity.server_user() == identity.os_user()
    monkeypatch.setenv("NB_PREFIX", "/notebook/kubeflow-alice/my-notebook")
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")  # a hub's user comes first
    assert identity.server_user() == "alice"
    mount.unlink()  # not in a pod
    monkeypatch.delenv("JUPYTERHUB_USER")
    assert identity.server_namespace() == "" and identity.server_user() == identity.os_user()


async def test_a_server_that_authenticates_users_starts_each_kernel_as_its_requester(
    tmp_path: Path, reaper: Path
) -> None:
    """``trust_request_user``: a jupyter_server whose identity provider authenticates alice and bob (two
    tokens) starts each GPU (auto) kernel as the user of the authenticated request, whatever that request's
    ``env`` claims; without the setting, both would be the server's OS account."""
    from tornado.httpclient import AsyncHTTPClient, HTTPRequest

    srv_dir = tmp_path / "srv"
    env = _server_env(tmp_path, srv_dir)
    env.update(
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")]),
    )
    env.pop("JUPYTERHUB_USER", None)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    proc = _start(
        [
            str(BIN / "jupyter"), "server", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            "--ServerApp.identity_provider_class=tests.clients.two_users.TwoUsers",
            "--GpuAutoProvisioner.trust_request_user=True",
        ],
        env,
        log,
    )  # fmt: skip

    async def api(method: str, path: str, token: str, body: Any = None) -> Any:
        data = json.dumps(body) if body is not None else (b"" if method == "POST" else None)
        headers = {"Authorization": f"token {token}"}
        req = HTTPRequest(url + path, method=method, headers=headers, body=data, request_timeout=120)
        r = await AsyncHTTPClient().fetch(req)
        return json.loads(r.body) if r.body else None

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                await api("GET", "/api/status", "alice-token")
                break
            except (OSError, Exception):
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        for token, user in (("alice-token", "alice"), ("bob-token", "bob")):
            model = await api("POST", "/api/kernels", token, {"name": KERNEL, "env": IMPERSONATION})
            status = _wait_file(srv_dir / "runtime" / f"mlp-kernel-status-{model['id']}.json")
            assert status["user"] == user, (status["user"], log.read_text()[-2000:])
            assert json.loads(_gateway_env(model["id"])["MLP_KERNEL_CONFIG"])["user"] == user
            await api("DELETE", f"/api/kernels/{model['id']}", token)
    finally:
        _stop(proc)
