"""papermill parameterises and runs a notebook on "GPU (auto)": injected parameters reach the remote kernel.

papermill injects a cell after the one tagged ``parameters`` and runs the notebook through nbclient with the
kernel named in the call; the output notebook must hold the results computed from the injected values.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill as pm
from nbformat.v4 import new_code_cell, new_notebook

from .conftest import KERNEL, remote_kernels, wait_until_gone


def test_parameters_are_injected_and_results_land_in_the_output_notebook(gpu_kernelspec: Path) -> None:
    params = new_code_cell("n = 1\nlabel = 'default'")
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(
        cells=[
            params,
            new_code_cell("import os\nprint('remote pid', os.getpid())\nresult = 2*n\nprint(label, result)"),
            new_code_cell("result"),
            new_code_cell("%gpu"),
        ],
        metadata={"kernelspec": {"name": KERNEL, "display_name": "GPU (auto) test", "language": "python"}},
    )
    src, dst = gpu_kernelspec / "in.ipynb", gpu_kernelspec / "out.ipynb"
    nbformat.write(nb, src)

    pm.execute_notebook(
        str(src),
        str(dst),
        parameters={"n": 21, "label": "answer"},
        kernel_name=KERNEL,
        progress_bar=False,
        start_timeout=120,
        execution_timeout=180,
    )

    out = nbformat.read(dst, as_version=4)
    assert out.metadata.papermill.parameters == {"n": 21, "label": "answer"}
    injected = [c for c in out.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "n = 21" in injected[0].source
    run_cell, result_cell, gpu_cell = out.cells[-3:]
    streams = "".join(o.text for o in run_cell.outputs if o.output_type == "stream")
    assert "answer 42" in streams, streams
    assert result_cell.outputs[0].data["text/plain"] == "42"
    assert "GPU (auto): running" in "".join(o.text for o in gpu_cell.outputs if o.output_type == "stream")
    assert all(c.metadata.papermill.status == "completed" for c in out.cells)

    remote_pid = int(streams.split("remote pid ")[1].split()[0])
    assert wait_until_gone([remote_pid]) == []
    assert remote_kernels(gpu_kernelspec) == []
