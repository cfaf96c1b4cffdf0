"""A real ``jupyter lab`` (subprocess) with mlp-kernel's server and lab extensions, and headless Chromium.

The server runs on a random port with a token, in temporary Jupyter config/data/runtime directories. Its
``JUPYTER_PATH`` holds a copy of the shipped gpu-auto kernelspec (local backend, short idle timeout) and the
built lab extension (``mlp_kernel/labextension``, built by ``jlpm build:prod`` in ``labextension/``), so the
test sees exactly what a ``pip install`` ships. Two users are told apart by a cookie read by the test identity
provider (tests/server/header_identity.py): ``alice`` is an mlp-kernel admin, ``bob`` is not.

Chromium is Debian's (/usr/bin/chromium), driven by the ``playwright`` Python package; no browser is
downloaded. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BUILT_EXTENSION = REPO / "mlp_kernel" / "labextension"
ARTIFACTS = REPO / "test-artifacts" / "browser"
IDLE_TIMEOUT = "25s"
ADMIN, USER = "alice", "bob"


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    runtime: Path
    spec_dir: Path
    log: Path

    def api(self, method: str, path: str, body: Any = None) -> Any:
        req = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read().decode()
        return json.loads(text) if text else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if not (BUILT_EXTENSION / "package.json").is_file():
        pytest.fail(
            "The lab extension is not built: run `cd labextension && jlpm install && "
            "jlpm build:prod` (jlpm is in the virtualenv's bin)."
        )
    base = tmp_path_factory.mktemp("lab")
    names = ("path", "config", "data", "runtime", "root")
    jupyter_path, config, data, runtime, root = (base / n for n in names)
    for d in (config, data, runtime, root, jupyter_path / "labextensions"):
        d.mkdir(parents=True)
    spec_dir = jupyter_path / "kernels" / "gpu-auto"
    shutil.copytree(REPO / "kernelspecs" / "gpu-auto", spec_dir)
    spec = json.loads((spec_dir / "kernel.json").read_text())
    spec["metadata"]["kernel_provisioner"]["config"].update(
        {"idle_timeout": IDLE_TIMEOUT, "backend": "local", "log_level": "INFO"}
    )
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=2))
    (jupyter_path / "labextensions" / "mlp-kernel").symlink_to(BUILT_EXTENSION)
    news = config / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    (config / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "ServerApp": {
                    "jpserver_extensions": {"mlp_kernel": True},
                    "identity_provider_class": "tests.server.header_identity.HeaderIdentityProvider",
                },
                "MlpKernelExtension": {"admin_users": [ADMIN], "history_dir": str(base / "history")},
            }
        )
    )
    token = secrets.token_hex(16)
    port = _free_port()
    env = {
        **os.environ,
        "JUPYTER_PATH": str(jupyter_path),
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_DATA_DIR": str(data),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    log = base / "lab.log"
    jupyter = Path(sys.executable).parent / "jupyter"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(jupyter),
                "lab",
                "--no-browser",
                f"--port={port}",
                "--ip=127.0.0.1",
                "--allow-root",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
                "--LabApp.news_url=",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=root,
            start_new_session=True,
        )
    lab = Lab(f"http://127.0.0.1:{port}/", token, root, runtime, spec_dir, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                lab.api("GET", "api/status")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not start:\n{log.read_text()[-4000:]}")
                time.sleep(0.5)
        yield lab
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server's own group: lab, gateways and their kernels
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, ARTIFACTS / "jupyter-lab.log")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_lab(browser: Any, lab: Lab, user: str, path: str = "") -> Any:
    """A page logged in (token) as ``user`` in a fresh workspace, with ``path`` (e.g. ``tree/x.ipynb``) open.

    Each page gets its own workspace so that one test's open notebooks never reappear in the next.
    """
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_cookies([{"name": "mlp_test_user", "value": user, "url": lab.url}])
    page = context.new_page()
    page.set_default_timeout(90_000)
    workspace = f"t{secrets.token_hex(4)}"
    page.goto(f"{lab.url}lab/workspaces/{workspace}/{path}?token={lab.token}&reset")
    page.wait_for_selector("#jp-main-dock-panel", state="attached")
    return page


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
