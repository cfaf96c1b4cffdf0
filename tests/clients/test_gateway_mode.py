"""Gateway mode: a notebook server with ``--gateway-url`` runs "GPU (auto)" on a Jupyter Kernel Gateway.

Here the kernelspec exists only where the kernel gateway runs; the notebook server lists it, starts a kernel
and proxies the websocket through the gateway's HTTP API (the Enterprise Gateway / JKG deployment). Nothing in
our kernel may depend on running inside the server process, so the same kernel must work with no change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from .conftest import KERNEL, free_port, install_kernelspec, kill_tree, remote_kernels, wait_no_remote
from .wsclient import V1, run_cell

BIN = Path(sys.executable).parent
TOKEN = "client-test-token"


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()  # lets the server shut its kernels down
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            pass
    kill_tree(proc.pid)
    proc.wait(10)


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[1]} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            req = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
            urllib.request.urlopen(req, timeout=5)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer in {timeout} s:\n{log.read_text()}")


@pytest.fixture
def servers(tmp_path: Path, reaper: Path) -> Iterator[tuple[str, str]]:
    """A kernel gateway holding gpu-auto-test, and a notebook server pointed at it; yields their base URLs."""
    kg_dir, srv_dir = tmp_path / "kg", tmp_path / "server"
    install_kernelspec(kg_dir)
    base = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    base.update(IPYTHONDIR=str(tmp_path / "ipython"), JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    kg_env = dict(base, JUPYTER_PATH=str(kg_dir), JUPYTER_RUNTIME_DIR=str(kg_dir / "runtime"))
    srv_env = dict(base, JUPYTER_RUNTIME_DIR=str(srv_dir / "runtime"), JUPYTER_DATA_DIR=str(srv_dir / "data"))
    srv_dir.mkdir()
    kg_port, srv_port = free_port(), free_port()
    kg_url, srv_url = f"http://127.0.0.1:{kg_port}", f"http://127.0.0.1:{srv_port}"
    procs = []
    try:
        kg_log = tmp_path / "kernelgateway.log"
        procs.append(
            _start(
                [
                    str(BIN / "jupyter"),
                    "kernelgateway",
                    "--KernelGatewayApp.ip=127.0.0.1",
                    f"--KernelGatewayApp.port={kg_port}",
                    "--KernelGatewayApp.port_retries=0",
                    "--JupyterWebsocketPersonality.list_kernels=True",
                ],
                kg_env,
                kg_log,
            )
        )
        srv_log = tmp_path / "server.log"
        procs.append(
            _start(
                [
                    str(BIN / "jupyter"),
                    "server",
                    "--no-browser",
                    "--allow-root",
                    f"--port={srv_port}",
                    "--port-retries=0",
                    f"--IdentityProvider.token={TOKEN}",
                    f"--gateway-url={kg_url}",
                    f"--ServerApp.root_dir={srv_dir}",
                ],
                srv_env,
                srv_log,
            )
        )
        _wait_http(f"{kg_url}/api", procs[0], kg_log)
        _wait_http(f"{srv_url}/api/status", procs[1], srv_log)
        yield kg_url, srv_url
    finally:
        for p in reversed(procs):
            _stop(p)


async def _api(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    req = HTTPRequest(
        url,
        method=method,
        headers={"Authorization": f"token {TOKEN}"},
        request_timeout=120,
        body=json.dumps(body) if body is not None else (b"" if method == "POST" else None),
    )
    try:
        r = await AsyncHTTPClient().fetch(req)
    except HTTPClientError as e:
        assert e.response is not None, e
        return e.code, e.response.body.decode()
    return r.code, json.loads(r.body) if r.body else None


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_notebook_server_in_gateway_mode_lists_runs_and_deletes_the_kernel(
    servers: tuple[str, str], tmp_path: Path
) -> None:
    kg_url, srv_url = servers
    code, specs = await _api("GET", f"{srv_url}/api/kernelspecs")
    # Listed although installed only where the kernel gateway runs: the server asked the gateway.
    assert code == 200 and KERNEL in specs["kernelspecs"], specs

    code, kernel = await _api("POST", f"{srv_url}/api/kernels", {"name": KERNEL})
    assert code == 201 and kernel["name"] == KERNEL, kernel
    ws_url = f"{srv_url.replace('http', 'ws', 1)}/api/kernels/{kernel['id']}/channels?token={TOKEN}"
    # Ask for the binary protocol as JupyterLab 4 does; jupyter_server 2.21's gateway websocket connection
    # selects the legacy JSON protocol instead (run_cell speaks both).
    ws = await websocket_connect(HTTPRequest(ws_url, connect_timeout=120), subprotocols=[V1])
    try:
        first = await run_cell(ws, "import os\nx = 6 * 7\nprint('pid', os.getpid())")
        second = await run_cell(ws, "x + 1")
        gpu = await run_cell(ws, "%gpu")
        running = remote_kernels(tmp_path / "kg")
    finally:
        ws.close()

    assert first.reply["status"] == "ok"
    remote_pid = int(first.stdout.split()[1])
    assert [p.pid for p in running] == [remote_pid]
    assert second.of_type("execute_result")[0]["data"]["text/plain"] == "43"
    assert "GPU (auto): running" in gpu.stdout

    code, _ = await _api("DELETE", f"{srv_url}/api/kernels/{kernel['id']}")
    assert code == 204
    assert await _api("GET", f"{kg_url}/api/kernels") == (200, [])
    assert wait_no_remote(tmp_path / "kg") == []
