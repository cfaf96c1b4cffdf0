"""GPU (auto) hosted by Jupyter Enterprise Gateway 3.3, with a notebook server pointed at it (--gateway-url).

EG 3.x cannot run kernel provisioners (it pins ``jupyter_client<7``), so it starts the gateway kernel process
from ``kernel.json``'s ``argv`` alone. What makes that work: ``mlp-kernel install --python`` names the
interpreter that has mlp-kernel (EG's own environment does not), and the gateway reads the kernelspec's
``metadata.kernel_provisioner.config`` itself from ``--kernelspec-dir {resource_dir}`` when no provisioner
set ``MLP_KERNEL_CONFIG``. This test proves a notebook server in gateway mode lists the kernelspec from EG,
runs cells on a remote (local-backend) kernel with the kernelspec's own settings, and that deleting the
kernel leaves nothing behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from .conftest import free_port, remote_kernels, wait_gone_under, wait_no_remote
from .enterprise_gateway import VERSION, ensure
from .test_gateway_mode import TOKEN, _api, _start, _stop, _wait_http
from .wsclient import V1, run_cell

BIN = Path(sys.executable).parent
NAME = "gpu-auto-eg"


@pytest.fixture
def eg_and_server(tmp_path: Path, reaper: Path) -> Iterator[tuple[str, str, Path]]:
    eg = ensure()
    prefix = tmp_path / "eg"
    subprocess.run(
        [
            str(BIN / "mlp-kernel"), "install", "--name", NAME, "--display-name", "GPU (auto) on EG",
            "--python", sys.executable, "--idle-timeout", "7m", "--prefix", str(prefix),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    base = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "MLP_KERNEL"))}
    base.update(IPYTHONDIR=str(tmp_path / "ipython"), JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    eg_env = dict(
        base, JUPYTER_PATH=str(prefix / "share" / "jupyter"), JUPYTER_RUNTIME_DIR=str(prefix / "rt")
    )
    srv_dir = tmp_path / "server"
    srv_dir.mkdir()
    srv_env = dict(base, JUPYTER_RUNTIME_DIR=str(srv_dir / "runtime"), JUPYTER_DATA_DIR=str(srv_dir / "data"))
    eg_port, srv_port = free_port(), free_port()
    eg_url, srv_url = f"http://127.0.0.1:{eg_port}", f"http://127.0.0.1:{srv_port}"
    procs = []
    try:
        eg_log = tmp_path / "enterprisegateway.log"
        # EG refuses kernels for 'root' by default (unauthorized_users); tests run as root here.
        procs.append(
            _start(
                [
                    str(eg), "--ip=127.0.0.1", f"--port={eg_port}", "--port_retries=0",
                    "--EnterpriseGatewayApp.list_kernels=True",
                    "--EnterpriseGatewayApp.unauthorized_users=set()",
                ],
                eg_env,
                eg_log,
            )
        )  # fmt: skip
        srv_log = tmp_path / "server.log"
        procs.append(
            _start(
                [
                    str(BIN / "jupyter"), "server", "--no-browser", "--allow-root", f"--port={srv_port}",
                    "--port-retries=0", f"--IdentityProvider.token={TOKEN}", f"--gateway-url={eg_url}",
                    f"--ServerApp.root_dir={srv_dir}",
                ],
                srv_env,
                srv_log,
            )
        )  # fmt: skip
        _wait_http(f"{eg_url}/api", procs[0], eg_log)
        _wait_http(f"{srv_url}/api/status", procs[1], srv_log)
        yield eg_url, srv_url, prefix
    finally:
        for p in reversed(procs):
            _stop(p)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_enterprise_gateway_hosts_gpu_auto_with_the_kernelspecs_own_settings(
    eg_and_server: tuple[str, str, Path],
) -> None:
    eg_url, srv_url, prefix = eg_and_server
    code, versions = await _api("GET", f"{eg_url}/api")
    assert code == 200 and versions["gateway_version"] == VERSION, versions
    code, specs = await _api("GET", f"{srv_url}/api/kernelspecs")
    assert code == 200 and NAME in specs["kernelspecs"], specs  # listed by the server, installed only in EG

    code, kernel = await _api("POST", f"{srv_url}/api/kernels", {"name": NAME})
    assert code == 201 and kernel["name"] == NAME, kernel
    ws_url = f"{srv_url.replace('http', 'ws', 1)}/api/kernels/{kernel['id']}/channels?token={TOKEN}"
    ws = await websocket_connect(HTTPRequest(ws_url, connect_timeout=120), subprotocols=[V1])
    try:
        first = await run_cell(ws, "import os\nx = 6 * 7\nprint('pid', os.getpid())")
        second = await run_cell(ws, "x + 1")
        status = await run_cell(ws, "%gpu status")
        running = remote_kernels(prefix)
    finally:
        ws.close()

    assert first.reply["status"] == "ok", first.reply
    remote_pid = int(first.stdout.split()[1])
    assert [p.pid for p in running] == [remote_pid], "one remote kernel, started by the gateway EG launched"
    assert second.of_type("execute_result")[0]["data"]["text/plain"] == "43"
    assert "GPU (auto): running" in status.stdout, status.stdout
    # the kernelspec's idle_timeout (7m) reached the gateway without a provisioner: read from kernel.json
    assert "idle limit 7 min" in status.stdout, status.stdout

    code, _ = await _api("DELETE", f"{srv_url}/api/kernels/{kernel['id']}")
    assert code == 204
    assert await _api("GET", f"{eg_url}/api/kernels") == (200, [])
    assert wait_no_remote(prefix) == []
    assert wait_gone_under(prefix, "mlp_kernel.gateway") == []
