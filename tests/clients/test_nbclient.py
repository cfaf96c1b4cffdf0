"""nbclient runs a notebook on "GPU (auto)" exactly as on ipykernel: state, outputs and errors per cell.

nbclient is what nbconvert --execute, papermill and many CI notebook runners use; it drives the kernel through
a plain ``KernelManager``, so passing here means the gateway is a drop-in kernel for all of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from .conftest import KERNEL, remote_kernels, wait_until_gone


def _texts(cell: Any, output_type: str) -> str:
    out = []
    for o in cell.outputs:
        if o.output_type != output_type:
            continue
        if output_type == "stream":
            out.append(o.text)
        elif output_type == "error":
            out.append(f"{o.ename}: {o.evalue}")
        else:
            out.append(str(o.data.get("text/plain", "")) + str(o.data.get("text/html", "")))
    return "".join(out)


def _notebook() -> nbformat.NotebookNode:
    return new_notebook(
        cells=[
            new_code_cell("%gpu"),
            new_code_cell("import os, sys\nx = 6 * 7\nprint('pid', os.getpid(), 'argv', sys.argv)"),
            new_code_cell("x + 1"),
            new_code_cell("from IPython.display import HTML\ndisplay(HTML('<b>html from x=%d</b>' % x))"),
            new_code_cell("1 / 0"),
            new_code_cell("%gpu"),
            new_code_cell("print('still', x)"),
        ],
        metadata={"kernelspec": {"name": KERNEL, "display_name": "GPU (auto) test", "language": "python"}},
    )


def test_notebook_runs_unchanged_with_outputs_in_the_right_cells(gpu_kernelspec: Path) -> None:
    nb = _notebook()
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=180, startup_timeout=120, allow_errors=True)
    client.execute()
    status0, run, result, html, error, status1, after = nb.cells

    # %gpu before any code: answered by the gateway itself, no GPU kernel yet.
    assert "GPU (auto)" in _texts(status0, "stream")
    assert "running" not in _texts(status0, "stream")

    # The first code cell shows the placement progress, then its own output, from the remote kernel.
    assert "[GPU (auto)]" in _texts(run, "display_data")
    stdout = _texts(run, "stream")
    assert "argv" in stdout and "mlp-remote-" in stdout, stdout  # ran in the remote ipykernel
    remote_pid = int(stdout.split()[1])

    assert result.outputs[0].output_type == "execute_result"
    assert result.outputs[0].data["text/plain"] == "43"  # x persisted across cells
    assert "<b>html from x=42</b>" in _texts(html, "display_data")
    assert _texts(error, "error") == "ZeroDivisionError: division by zero"
    assert "GPU (auto): running" in _texts(status1, "stream")
    assert _texts(after, "stream") == "still 42\n"  # the kernel survived the error

    # Execution counts are the notebook's own: the %gpu cells count too, like any cell.
    counts = [c.execution_count for c in nb.cells]
    assert counts == sorted(counts) and len(set(counts)) == len(counts), counts

    # nbclient shut the kernel down at the end: the remote kernel went with it.
    assert wait_until_gone([remote_pid]) == []
    assert remote_kernels(gpu_kernelspec) == []
