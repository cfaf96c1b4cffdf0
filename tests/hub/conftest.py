"""One real JupyterHub for the module (tests/hub/hub_config.py), its API, and Chromium through Playwright.

The hub (PyPI's jupyterhub, in the test extra) runs with its real proxy (configurable-http-proxy from the npm
registry, ``python -m tests.hub.proxy``), NativeAuthenticator and SimpleLocalProcessSpawner; the GPU (auto)
kernelspec (the shipped one, on the embedded ``local`` backend) sits on a Jupyter path every single-user
server reads, as it would in a single-user image. The browser is Debian's Chromium (the one the Galata specs
use), driven by Playwright's Python API: the hub is not Galata's test server, and the checks next to the
browser (API tokens, status files, processes) are Python. Everything missing fails with CI set (tests/ci.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.ci import require_module, unavailable
from tests.clients.conftest import free_port, install_kernelspec, kill_tree, wait_gone_under

from . import proxy

KERNELSPEC = "gpu-auto"
CHROMIUM = os.environ.get("MLP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync"]
VENV_BIN = Path(sys.executable).parent
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "hub"


@dataclass
class Hub:
    url: str  # the public URL (the proxy), e.g. http://127.0.0.1:PORT
    base: Path  # MLP_HUB_DIR
    service_token: str
    log: Path

    def api(self, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
        """``method`` on ``{url}{path}`` with ``token`` (default: the service's): status, JSON or text."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"token {token or self.service_token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw or b"null")
        except ValueError:
            return status, raw.decode(errors="replace")

    def token_for(self, user: str) -> str:
        """A new API token of ``user`` (with the user's own permissions), made by the test service."""
        status, body = self.api("POST", f"/hub/api/users/{user}/tokens", body={"note": "mlp-kernel hub test"})
        assert status in (200, 201), (status, body)
        return str(body["token"])

    def user_dir(self, user: str, kind: str) -> Path:
        """The single-user server's ``JUPYTER_<kind>_DIR`` (hub_config.py)."""
        return self.base / "users" / user / kind

    def home(self, user: str) -> Path:
        return self.base / "home" / user


def _prerequisites() -> None:
    require_module("jupyterhub", "jupyterhub is not installed (pip install -e '.[test]')")
    require_module(
        "nativeauthenticator", "jupyterhub-nativeauthenticator is not installed (pip install -e '.[test]')"
    )
    require_module("playwright", "playwright (Python) is not installed (pip install -e '.[test]')")
    if not proxy.CHP.exists():
        unavailable(
            f"configurable-http-proxy is not installed: run `python -m tests.hub.proxy` ({proxy.CHP})"
        )
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium; MLP_CHROMIUM names another)")


def _wait_up(hub: Hub, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyterhub exited with {proc.returncode}:\n{hub.log.read_text()[-6000:]}")
        try:
            if hub.api("GET", "/hub/api/")[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the hub did not answer in {timeout} s:\n{hub.log.read_text()[-6000:]}")


@contextlib.contextmanager
def run_hub(
    base: Path,
    user_env: dict[str, str] | None = None,
    config: Path | None = None,
    hub_env: dict[str, str] | None = None,
) -> Iterator[Hub]:
    """A hub on free ports with its state under ``base``; stopped (servers and kernels too) on exit.

    ``user_env``: more variables for every single-user server, ``{username}`` replaced by the user's name (the
    Kubernetes variant gives each server its user's kubeconfig this way). ``config``: the hub's configuration
    file (default hub_config.py; hub_config_kube.py spawns with KubeSpawner); ``hub_env``: more variables for
    the hub process itself (KubeSpawner's kubeconfig).
    """
    _prerequisites()
    found = Hub(
        url=f"http://127.0.0.1:{free_port()}",
        base=base,
        service_token=secrets.token_hex(16),
        log=base / "jupyterhub.log",
    )
    # KUBERNETES_SERVICE_*: a test machine that is itself a pod must not hand its cluster to KubeSpawner
    # (in-cluster config comes first there) or to the servers
    skip = ("JUPYTER", "MLP_", "KERNEL_", "CONFIGPROXY", "KUBERNETES_SERVICE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    repo = str(Path(__file__).resolve().parents[2])
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH", "")) if p),
        MLP_HUB_DIR=str(base),
        MLP_HUB_PORT=found.url.rsplit(":", 1)[1],
        MLP_HUB_API_PORT=str(free_port()),
        MLP_PROXY_API_PORT=str(free_port()),
        MLP_HUB_SERVICE_TOKEN=found.service_token,
        MLP_HUB_PROXY=str(proxy.CHP),
        MLP_HUB_USER_ENV=json.dumps(user_env or {}),
        **(hub_env or {}),
    )
    cmd = [str(VENV_BIN / "jupyterhub"), "-f", str(config or Path(__file__).with_name("hub_config.py"))]
    with found.log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=base, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_up(found, proc)
        yield found
    finally:
        if proc.poll() is None:
            proc.terminate()  # cleanup_servers: the hub stops the servers, they stop their kernels
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                pass
        kill_tree(proc.pid)
        # A gateway whose server is gone shuts itself down (releasing its GPU kernel: on Kubernetes, deleting
        # the pod); give it the time, then kill whatever a failure left: servers, gateways, GPU kernels.
        for straggler in wait_gone_under(base, timeout=60):
            kill_tree(straggler.pid)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(found.log, ARTIFACTS / f"jupyterhub-{base.name}.log")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    _prerequisites()
    base = tmp_path_factory.mktemp("hub")
    # The single-user image's GPU (auto) kernelspec: the shipped one on the local backend, read-only to users.
    install_kernelspec(base / "jupyter", KERNELSPEC, log_level="INFO")
    with run_hub(base) as found:
        yield found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _prerequisites()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
