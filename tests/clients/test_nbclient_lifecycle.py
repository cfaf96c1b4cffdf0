"""Lifecycle through nbclient: idle release while the notebook stays open, and interrupt on a cell timeout.

These are the two moments a client does not drive directly: the gateway releases the remote kernel on its own
(the client's kernel stays up and the next cell simply starts a new remote one), and nbclient interrupts a
cell that exceeds its timeout through ``KernelManager.interrupt_kernel`` (``interrupt_mode: message``).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from .conftest import KERNEL, install_kernelspec, remote_kernels, wait_until_gone

PID_CELL = "import os\nprint(os.getpid())"


def _stdout(cell: nbformat.NotebookNode) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


@pytest.mark.slow
def test_idle_release_keeps_the_notebook_open_and_the_next_cell_starts_a_new_remote_kernel(
    gpu_kernelspec: Path,
) -> None:
    shutil.rmtree(gpu_kernelspec / "kernels" / KERNEL)
    install_kernelspec(gpu_kernelspec, idle_timeout="3s")
    nb = new_notebook(cells=[new_code_cell(PID_CELL), new_code_cell("%gpu"), new_code_cell(PID_CELL)])
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=180, startup_timeout=120)
    with client.setup_kernel():
        client.execute_cell(nb.cells[0], 0)
        first_pid = int(_stdout(nb.cells[0]))
        gateway_pid = client.km.provisioner.process.pid
        # Released by the gateway's idle timer: the remote process ends while the client does nothing.
        assert wait_until_gone([first_pid], timeout=90) == []
        assert client.km.provisioner.process.poll() is None  # the kernel the client knows is still up
        # The process is gone a moment before the gateway has finished the release (the backend's bookkeeping,
        # the record): until then `%gpu` truthfully says "releasing". Ask again until it says released.
        deadline = time.monotonic() + 30
        client.execute_cell(nb.cells[1], 1)
        while "GPU (auto): released" not in _stdout(nb.cells[1]) and time.monotonic() < deadline:
            time.sleep(0.2)
            client.execute_cell(nb.cells[1], 1)
        client.execute_cell(nb.cells[2], 2)
        second_pid = int(_stdout(nb.cells[2]))
        assert second_pid not in (first_pid, gateway_pid)
    status = _stdout(nb.cells[1])
    assert "GPU (auto): released" in status, status
    assert wait_until_gone([second_pid]) == []
    assert remote_kernels(gpu_kernelspec) == []


@pytest.mark.slow
def test_nbclient_timeout_interrupts_the_remote_cell_and_the_kernel_stays_usable(
    gpu_kernelspec: Path,
) -> None:
    nb = new_notebook(
        cells=[
            new_code_cell(PID_CELL),
            new_code_cell("import time\nx = 1\ntime.sleep(600)\nx = 2"),
            new_code_cell("print('x is', x)"),
        ]
    )
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        startup_timeout=120,
        allow_errors=True,
        interrupt_on_timeout=True,
        timeout=180,
    )
    with client.setup_kernel():
        client.execute_cell(nb.cells[0], 0)
        client.timeout = 8  # only the sleeping cell has to time out
        client.execute_cell(nb.cells[1], 1)
        client.timeout = 180
        client.execute_cell(nb.cells[2], 2)
    errors = [o for o in nb.cells[1].outputs if o.output_type == "error"]
    assert [e.ename for e in errors] == ["KeyboardInterrupt"]
    assert _stdout(nb.cells[2]) == "x is 1\n"  # same remote kernel, interrupted mid-cell
    assert wait_until_gone([int(_stdout(nb.cells[0]))]) == []
