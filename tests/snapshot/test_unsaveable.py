"""Objects that cannot travel are reported by name, with the reason, and the rest is still saved."""

from __future__ import annotations

from pathlib import Path

from .conftest import KernelFactory, shutdown
from .helpers import restore_into, take_snapshot

NAMESPACE = """
import socket, threading, tempfile, os
fh = open(os.devnull)
sock = socket.socket()
gen = (i for i in range(3))
lock = threading.Lock()
log = open(os.path.join(tempfile.mkdtemp(), "log.txt"), "w")
holder = {"inner": log}
wired = [sock]

class Stubborn:
    def __reduce__(self):
        raise TypeError("I will not be pickled")

stubborn = Stubborn()
kept = [1, 2, 3]
"""


async def test_unpicklable_objects_are_reported_by_name(kernels: KernelFactory, tmp_path: Path) -> None:
    kernel = await kernels()
    await kernel.run(NAMESPACE)
    report = await take_snapshot(kernel, tmp_path / "snap")
    assert report.skipped["fh"] == "open file"
    assert report.skipped["sock"] == "socket"
    assert report.skipped["gen"] == "generator"
    assert report.skipped["lock"] == "lock"
    assert report.skipped["log"] == "open file"
    assert report.skipped["holder"] == "holds an open file"
    assert report.skipped["wired"] == "holds a socket"
    assert report.skipped["stubborn"].startswith("refuses to pickle: TypeError: I will not be pickled")
    assert "kept" in report.saved and "Stubborn" in report.saved
    line = report.summary_line("saved")
    assert line.startswith(f"Saved {report.count} variables (")
    assert "not saved: " in line and "fh (open file)" in line and "gen (generator)" in line


async def test_the_restore_names_what_was_not_carried(kernels: KernelFactory, tmp_path: Path) -> None:
    first = await kernels()
    await first.run(NAMESPACE)
    await take_snapshot(first, tmp_path / "snap")
    await shutdown(first)
    second = await kernels()
    report = await restore_into(second, tmp_path / "snap")
    assert report.skipped["fh"] == "not saved: open file"
    assert await second.value("kept") == [1, 2, 3]
    assert await second.value("'fh' in globals() or 'gen' in globals()") is False
    assert "not restored: " in report.summary_line("restored")


async def test_a_value_whose_module_is_gone_is_reported_at_restore(
    kernels: KernelFactory, tmp_path: Path
) -> None:
    """A module only the old kernel had (a local file here) fails by name, not the whole restore."""
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "only_here.py").write_text("class Thing:\n    pass\n")
    first = await kernels()
    await first.run(
        f"import sys\nsys.path.insert(0, {str(tmp_path / 'mods')!r})\n"
        "import only_here\nthing = only_here.Thing()\nfine = 42\n"
    )
    await take_snapshot(first, tmp_path / "snap")
    await shutdown(first)
    (tmp_path / "mods" / "only_here.py").unlink()
    second = await kernels()
    report = await restore_into(second, tmp_path / "snap")
    assert report.skipped["only_here"].startswith("could not be restored: ModuleNotFoundError")
    assert report.skipped["thing"].startswith("could not be restored: ModuleNotFoundError")
    assert await second.value("fine") == 42


async def test_without_cloudpickle_notebook_code_is_named_not_silently_lost(
    kernels: KernelFactory, tmp_path: Path
) -> None:
    """An image without cloudpickle still carries data; notebook-defined code is reported at snapshot time."""
    first = await kernels()
    await first.run(
        "import sys\nsys.modules['cloudpickle'] = None  # as if the image lacked it\n"
        "def f():\n    return 1\nclass C:\n    pass\nc = C()\ndata = {'k': [1, 2]}\n"
    )
    report = await take_snapshot(first, tmp_path / "snap")
    reason = "defined in the notebook; install cloudpickle in the kernel image to carry it"
    assert report.skipped == {"f": reason, "C": reason, "c": reason}
    await shutdown(first)
    second = await kernels()
    await restore_into(second, tmp_path / "snap")
    assert await second.value("data") == {"k": [1, 2]}
