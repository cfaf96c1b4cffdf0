"""The upstream ``jupyter_kernel_test`` suite against GPU (auto), cold and warm.

The suite is what kernel authors run to check a kernel speaks the protocol: every message is validated
against its schema, and an execute's iopub messages must be ``busy``, outputs, ``idle`` and nothing else.
*Cold* is a fresh kernel, so the first test that executes code (alphabetically ``test_clear_output``) also
starts the GPU kernel, with its progress output, inside that execute; *warm* has a GPU kernel running before
the first test. The sample code is the suite's own ipykernel configuration.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import jupyter_kernel_test
import nbformat

from mlp_kernel.backends.base import KERNEL_ARGS

from .conftest import make_kernelspec


class GpuAutoSamples:
    """What the suite runs (from jupyter_kernel_test's test_ipykernel.py); a mixin, so pytest collects only
    the concrete classes below."""

    kernel_name = "gpu-auto-kernel-test"
    language_name = "python"
    file_extension = ".py"
    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('test', file=sys.stderr)"
    completion_samples = [{"text": "zi", "matches": {"zip"}}]
    complete_code_samples = ["1", "print('hello, world')", "def f(x):\n  return x*2\n\n\n"]
    incomplete_code_samples = ['print("""hello', "def f(x):\n  x*2"]
    invalid_code_samples = ["import = 7q"]
    code_page_something = "zip?"
    code_generate_error = "raise"
    code_execute_result = [
        {"code": "1+2+3", "result": "6"},
        {"code": "[n*n for n in range(1, 4)]", "result": "[1, 4, 9]"},
    ]
    code_display_data = [
        {"code": "from IPython.display import HTML, display; display(HTML('<b>t</b>'))", "mime": "text/html"},
        {"code": "from IPython.display import Math, display; display(Math('1/2'))", "mime": "text/latex"},
    ]
    code_history_pattern = "1?2*"
    supported_history_operations = ("tail", "search")
    code_inspect_sample = "zip"
    code_clear_output = "from IPython.display import clear_output; clear_output()"
    support_iopub_welcome = True
    warm = False
    _env: dict[str, str | None]
    _tmp: tempfile.TemporaryDirectory[str]

    @classmethod
    def setUpClass(cls) -> None:
        cls._tmp = tempfile.TemporaryDirectory()
        base = Path(cls._tmp.name)
        # IPython's own completer, not jedi's: the suite checks the protocol ('zi' completes to 'zip'), and
        # jedi sometimes answered without 'zip' when the 2-core CI machine was at full load (3 workers).
        make_kernelspec(
            base, cls.kernel_name, local_kernel_args=[*KERNEL_ARGS, "--IPCompleter.use_jedi=False"]
        )
        paths = {"JUPYTER_PATH": str(base), "JUPYTER_RUNTIME_DIR": str(base / "runtime")}
        cls._env = {name: os.environ.get(name) for name in paths}
        os.environ.update(paths)
        super().setUpClass()  # type: ignore[misc]
        if cls.warm:
            kc: Any = cls.kc  # type: ignore[attr-defined]
            reply = kc.execute_interactive("pass", timeout=90)
            assert reply["content"]["status"] == "ok", reply

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            super().tearDownClass()  # type: ignore[misc]
        finally:
            for name, value in cls._env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            cls._tmp.cleanup()


class GpuCells:
    """Cells only GPU (auto) has, checked with the suite's own helper and message validation."""

    def test_gpu_lines_and_code_in_one_cell(self) -> None:
        """The gateway runs the ``%gpu`` lines (it says busy), then relays the code: one busy, one idle."""
        self.flush_channels()  # type: ignore[attr-defined]
        reply, output_msgs = self.execute_helper(code="%gpu\nprint('hello, world')")  # type: ignore[attr-defined]
        assert reply["content"]["status"] == "ok"
        assert any(m["content"].get("text") == "hello, world\n" for m in output_msgs), output_msgs

    def test_cells_the_gateway_answers_itself(self) -> None:
        """``%gpu`` cells never reach a GPU kernel: what the gateway says must pass the same validation, and
        its outputs, saved the way JupyterLab saves them, must be valid nbformat."""
        self.flush_channels()  # type: ignore[attr-defined]
        reply, output_msgs = self.execute_helper(code="%gpu")  # type: ignore[attr-defined]
        assert reply["content"]["status"] == "ok" and output_msgs[0]["msg_type"] == "stream"
        reply, output_msgs = self.execute_helper(code="%gpu zz9")  # type: ignore[attr-defined]
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "GpuMagicError"
        assert [m["msg_type"] for m in output_msgs] == ["error"]
        validate_as_saved(output_msgs)


def as_saved(msg: dict[str, Any]) -> dict[str, Any]:
    """An iopub output as JupyterLab's output area stores it: the content plus output_type (no transient)."""
    output = {k: v for k, v in msg["content"].items() if k != "transient"}
    output["output_type"] = msg["msg_type"]
    return output


def validate_as_saved(output_msgs: list[dict[str, Any]]) -> None:
    outputs = [as_saved(m) for m in output_msgs if m["msg_type"] != "clear_output"]
    cell = {"cell_type": "code", "id": "c1", "metadata": {}, "source": "", "execution_count": 1}
    notebook = {**nbformat.v4.new_notebook(), "cells": [{**cell, "outputs": outputs}]}
    nbformat.validate(nbformat.from_dict(notebook))


class TestColdGpuAuto(GpuCells, GpuAutoSamples, jupyter_kernel_test.KernelTests):
    pass


class TestWarmGpuAuto(GpuCells, GpuAutoSamples, jupyter_kernel_test.KernelTests):
    warm = True


class TestGpuAutoIopubWelcome(GpuAutoSamples, jupyter_kernel_test.IopubWelcomeTests):
    pass
