"""jupyter_server (the server under JupyterLab) starts, drives and deletes a "GPU (auto)" kernel unchanged.

Everything goes through the public REST API and the kernel websocket, as JupyterLab does; the server uses its
own ``AsyncMappingKernelManager`` and our provisioner, found by entry point from the kernelspec.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ..conftest import KERNEL, remote_kernels, wait_no_remote, wait_until_gone
from ..wsclient import V1, run_cell


@pytest.mark.parametrize("protocol", ["json", V1])
def test_rest_start_websocket_execute_and_delete_leave_no_remote_kernel(
    jp_fetch: Any, jp_ws_fetch: Any, run: Any, server_kernelspec: Path, protocol: str
) -> None:
    async def scenario() -> tuple[Any, ...]:
        specs = json.loads((await jp_fetch("api", "kernelspecs")).body)
        assert KERNEL in specs["kernelspecs"]
        r = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": KERNEL}))
        kernel = json.loads(r.body)
        subprotocols = [V1] if protocol == V1 else None
        ws = await jp_ws_fetch("api", "kernels", kernel["id"], "channels", subprotocols=subprotocols)
        assert ws.selected_subprotocol == (V1 if protocol == V1 else None)
        try:
            first = await run_cell(ws, "import os\nx = 6 * 7\nprint('pid', os.getpid())")
            second = await run_cell(ws, "x + 1")
            gpu = await run_cell(ws, "%gpu")
            running = remote_kernels(server_kernelspec)
        finally:
            ws.close()
        deleted = await jp_fetch("api", "kernels", kernel["id"], method="DELETE")
        listed = json.loads((await jp_fetch("api", "kernels")).body)
        return kernel, first, second, gpu, running, deleted.code, listed

    kernel, first, second, gpu, running, deleted, listed = run(scenario())

    assert kernel["name"] == KERNEL
    assert first.reply["status"] == "ok"
    assert any("[GPU (auto)]" in o["data"]["text/plain"] for o in first.of_type("display_data"))
    remote_pid = int(first.stdout.split()[1])
    assert [p.pid for p in running] == [remote_pid]  # the cell ran in the remote kernel the gateway started
    assert second.of_type("execute_result")[0]["data"]["text/plain"] == "43"
    assert "GPU (auto): running" in gpu.stdout
    assert deleted == 204 and listed == []
    assert wait_until_gone([remote_pid]) == []
    assert wait_no_remote(server_kernelspec) == []


def test_restart_through_the_rest_api_releases_the_remote_kernel_and_the_next_cell_starts_anew(
    jp_fetch: Any, jp_ws_fetch: Any, run: Any, server_kernelspec: Path
) -> None:
    async def scenario() -> tuple[int, int, str, int]:
        r = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": KERNEL}))
        kid = json.loads(r.body)["id"]
        ws = await jp_ws_fetch("api", "kernels", kid, "channels")
        try:
            before = int((await run_cell(ws, "import os\nx = 1\nprint(os.getpid())")).stdout)
            restarted = await jp_fetch("api", "kernels", kid, "restart", method="POST", body="{}")
            assert restarted.code == 200
            gone = wait_until_gone([before])
            after = await run_cell(ws, "import os\nprint(os.getpid(), 'x' in globals())")
        finally:
            ws.close()
        await jp_fetch("api", "kernels", kid, method="DELETE")
        pid, defined = after.stdout.split()
        return before, len(gone), defined, int(pid)

    before, still_alive, x_defined, after = run(scenario())
    assert still_alive == 0  # the restart released the remote kernel of the old gateway
    assert x_defined == "False" and after != before  # a fresh remote kernel, as after any restart
    assert wait_until_gone([after]) == []
    assert wait_no_remote(server_kernelspec) == []


def test_the_gpu_kernel_runs_in_the_notebooks_directory_and_reads_the_files_next_to_it(
    jp_fetch: Any, jp_ws_fetch: Any, run: Any, server_kernelspec: Path, jp_root_dir: Path
) -> None:
    """A notebook that reads ``data.csv`` next to it works on GPU (auto) as on the CPU server: the server
    starts the kernel in the notebook's directory, and the remote kernel (local backend) inherits it."""
    folder = jp_root_dir / "project" / "analysis"
    folder.mkdir(parents=True)
    (folder / "data.csv").write_text("a,b\n1,2\n")

    async def scenario() -> tuple[Any, Any]:
        body = {"path": "project/analysis/nb.ipynb", "type": "notebook", "kernel": {"name": KERNEL}}
        r = await jp_fetch("api", "sessions", method="POST", body=json.dumps(body))
        session = json.loads(r.body)
        ws = await jp_ws_fetch("api", "kernels", session["kernel"]["id"], "channels")
        try:
            cell = await run_cell(
                ws, "import os\nprint(os.getcwd())\nprint(open('data.csv').read().split()[1])"
            )
        finally:
            ws.close()
        await jp_fetch("api", "sessions", session["id"], method="DELETE")
        return cell, remote_kernels(server_kernelspec)

    cell, _ = run(scenario())
    assert cell.reply["status"] == "ok", cell.reply
    cwd, row = cell.stdout.split()
    assert Path(cwd).resolve() == folder.resolve()
    assert row == "1,2"
    assert wait_no_remote(server_kernelspec) == []
