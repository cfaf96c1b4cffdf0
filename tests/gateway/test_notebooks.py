"""Notebooks written elsewhere run through GPU (auto) and plain ipykernel: the same outputs, cell by cell.

The notebooks are papermill's own test notebooks (shipped in its wheel: plain cells, errors, a line magic
that does not exist, ``sys.exit``, logging, a cell that streams for 2.5 s) plus one written here for the
output kinds they lack (rich display, display updates, clear_output, stderr). Both runs go through nbclient,
as papermill and CI runners do. GPU (auto)'s only addition is its start-up progress in the first cell, taken
out before comparing. Every output, also as JupyterLab saves it (the message content plus ``output_type``),
must be valid nbformat.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

from .conftest import make_kernelspec

PAPERMILL = Path(papermill.__file__).parent / "tests" / "notebooks"
FROM_PAPERMILL = [
    "simple_execute",
    "line_magic_error",
    "broken1",
    "complex_parameters",
    "report_mode_test",
    "sysexit1",
    "systemexit",
    "test_autosave",
    "test_logging",
]
HERE = [
    "import sys\nprint('out')\nprint('err', file=sys.stderr)",
    "from IPython.display import HTML, Markdown, display\ndisplay(HTML('<b>bold</b>'))\nMarkdown('*md*')",
    "h = display('first', display_id=True)\nh.update('second')",
    "from IPython.display import clear_output\nprint('gone')\nclear_output()\nprint('kept')",
    "1/0",
    "[i * i for i in range(5)]",
    "for i in range(3):\n    print(i, flush=True)",
]


def written_here() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in HERE])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


class RecordingClient(NotebookClient):
    """Also keeps each output as JupyterLab's output area saves it: the message content plus output_type."""

    saved: list[dict[str, Any]]

    def output(self, outs: list, msg: dict, display_id: str, cell_index: int) -> Any:
        if msg["msg_type"] in ("stream", "display_data", "execute_result", "error"):
            saved = {k: v for k, v in msg["content"].items() if k != "transient"}
            self.saved.append({**saved, "output_type": msg["msg_type"]})
        return super().output(outs, msg, display_id, cell_index)


async def run(nb: nbformat.NotebookNode, km: AsyncKernelManager, cwd: Path) -> tuple[Any, list[dict]]:
    nb = copy.deepcopy(nb)
    client = RecordingClient(nb, km=km, allow_errors=True, timeout=90, resources={"metadata": {"path": cwd}})
    client.saved = []
    await client.async_execute()
    return nb, client.saved


def normalized(nb: nbformat.NotebookNode) -> list[tuple[Any, list[dict]]]:
    """Per code cell: its execution count and outputs, without GPU (auto)'s start-up progress, with the
    kernel's process id taken out of traceback file names, and consecutive stream chunks merged as
    JupyterLab shows them (how a 2.5 s stream is chunked depends on timing, in either kernel)."""
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.outputs:
            if str(out.get("data", {}).get("text/plain", "")).startswith("[GPU (auto)]"):
                continue
            out = copy.deepcopy(dict(out))
            if "traceback" in out:
                out["traceback"] = [re.sub(r"ipykernel_\d+", "ipykernel_N", tb) for tb in out["traceback"]]
            last = outputs[-1] if outputs else {}
            if out["output_type"] == last.get("output_type") == "stream" and out["name"] == last["name"]:
                last["text"] += out["text"]
            else:
                outputs.append(out)
        cells.append((cell.get("execution_count"), _streams_by_name(outputs)))
    return cells


def _streams_by_name(outputs: list[dict]) -> list[dict]:
    """Adjacent stdout and stderr chunks in name order: ipykernel flushes the two streams independently (each
    on its own timer), so which of them comes first is not defined, in either kernel (a CI run at load saw
    stderr first); the text of each stream and the order of everything else are still compared."""
    out: list[dict] = []
    for o in outputs:
        run = []
        while (
            out
            and out[-1]["output_type"] == "stream"
            and o["output_type"] == "stream"
            and out[-1]["name"] != o["name"]
        ):
            run.insert(0, out.pop())
        out += sorted([*run, o], key=lambda x: x["name"]) if run else [o]
    return out


def gpu_auto(base: Path) -> AsyncKernelManager:
    make_kernelspec(base, "gpu-auto-nb")
    ksm = KernelSpecManager(kernel_dirs=[str(base / "kernels")])
    return AsyncKernelManager(kernel_name="gpu-auto-nb", kernel_spec_manager=ksm)


def validate_saved(saved: list[dict[str, Any]]) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("")]
    notebook.cells[0].outputs = saved
    nbformat.validate(nbformat.from_dict(notebook))


async def test_a_notebook_with_gpu_errors_saves_as_valid_nbformat(tmp_path, runtime_dir):
    """Every GpuMagicError output once carried execution_count: each notebook saved after one was invalid
    and the server logged "Notebook JSON is invalid" on every save."""
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c) for c in ("%gpu zz9", "%gpu", "%gpu\nx = 1\nx", "%gpu idle=zz")]
    )
    done, saved = await run(nb, gpu_auto(tmp_path), tmp_path)
    errors = [o for o in saved if o["output_type"] == "error"]
    assert [e["ename"] for e in errors] == ["GpuMagicError", "GpuMagicError"], saved
    validate_saved(saved)
    nbformat.validate(done)
    assert [c.execution_count for c in done.cells] == [1, 2, 3, 4]


@pytest.mark.parametrize("name", [*FROM_PAPERMILL, "written-here"])
async def test_real_notebooks_give_the_same_outputs_on_gpu_auto_and_ipykernel(name, tmp_path, runtime_dir):
    if name == "written-here":
        nb = written_here()
    else:
        nb = nbformat.read(PAPERMILL / f"{name}.ipynb", as_version=4)
    gpu, saved = await run(nb, gpu_auto(tmp_path), tmp_path)
    plain, _ = await run(nb, AsyncKernelManager(kernel_name="python3"), tmp_path)
    assert normalized(gpu) == normalized(plain)
    nbformat.validate(gpu)
    validate_saved(saved)  # what JupyterLab would save, progress output included
