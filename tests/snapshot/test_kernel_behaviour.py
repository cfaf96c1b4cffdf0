"""What the snapshot leaves in the kernel: nothing new in the namespace, numbering that continues, limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlp_kernel.snapshot import (
    REPORT_NAME,
    SnapshotError,
    forget_code,
    parse_report,
    snapshot_code,
    user_expressions,
)

from .conftest import KernelFactory, shutdown
from .helpers import restore_into, take_snapshot


async def test_snapshot_and_restore_leave_no_names_behind(kernels: KernelFactory, tmp_path: Path) -> None:
    first = await kernels()
    await first.run("a = 1\nb = [a]\n")
    before = await first.names()
    await take_snapshot(first, tmp_path / "snap")
    assert await first.names() == before
    assert await first.value(f"{REPORT_NAME!r} in globals()") is False
    assert await first.value("'mlp_kernel' in __import__('sys').modules") is False
    await shutdown(first)

    second = await kernels()
    fresh = await second.names()
    await restore_into(second, tmp_path / "snap")
    assert await second.names() == fresh | {"a", "b"}


async def test_ipython_and_underscore_names_and_exclusions_are_not_saved(
    kernels: KernelFactory, tmp_path: Path
) -> None:
    kernel = await kernels()
    await kernel.run("x = 1\n_private = 2\ntmp_a = 3\ntmp_b = 4\nsecret = 5\n")
    await kernel.run("x")  # fills _, _1, Out
    report = await take_snapshot(kernel, tmp_path / "snap", exclude=["tmp_*", "secret"])
    assert report.saved == ["x"]
    for name in (
        "In",
        "Out",
        "_",
        "_1",
        "_i1",
        "_oh",
        "_ih",
        "_dh",
        "exit",
        "quit",
        "get_ipython",
        "_private",
    ):
        assert name not in report.saved and name not in report.skipped


async def test_execution_count_continues_in_the_new_kernel(kernels: KernelFactory, tmp_path: Path) -> None:
    first = await kernels()
    for _ in range(4):
        await first.run("pass")
    last = (await first.run("pass")).content["execution_count"]
    await take_snapshot(first, tmp_path / "snap")
    await shutdown(first)
    second = await kernels()
    await restore_into(second, tmp_path / "snap")
    assert (await second.run("pass")).content["execution_count"] == last + 1


async def test_size_cap_saves_small_variables_and_names_the_rest(
    kernels: KernelFactory, tmp_path: Path
) -> None:
    kernel = await kernels()
    await kernel.run(
        "import numpy as np\nsmall = list(range(10))\nbig = np.zeros(4_000_000)\n"
        "blob = bytes(3_000_000)\nname = 'ok'\n"
    )
    report = await take_snapshot(kernel, tmp_path / "snap", max_bytes=1_000_000)
    assert report.skipped == {"big": "over the size cap", "blob": "over the size cap"}
    assert {"small", "name", "np"} <= set(report.saved)
    assert report.bytes <= 1_000_000
    on_disk = sum(p.stat().st_size for p in (tmp_path / "snap").rglob("*.p*") if p.is_file())
    assert on_disk <= 1_000_000


async def test_zero_cap_saves_only_module_imports(kernels: KernelFactory, tmp_path: Path) -> None:
    kernel = await kernels()
    await kernel.run("import json\nvalue = 1\n")
    report = await take_snapshot(kernel, tmp_path / "snap", max_bytes=0)
    assert report.saved == ["json"] and report.skipped == {"value": "over the size cap"}


async def test_failed_snapshot_keeps_kernel_and_namespace_and_tells_why(
    kernels: KernelFactory, tmp_path: Path
) -> None:
    kernel = await kernels()
    await kernel.run("keep_me = 41\n")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the snapshot directory should go")
    reply = await kernel.silent(
        snapshot_code(str(blocker / "snap"), user="alice", max_bytes=None, exclude=()), user_expressions()
    )
    assert reply.content["status"] == "ok" and reply.outputs == []
    with pytest.raises(SnapshotError, match="Snapshot failed in the kernel: .*Error") as failure:
        parse_report(reply.content["user_expressions"])
    assert failure.value.report is not None and not failure.value.report.ok
    assert failure.value.report.summary_line("saved").startswith("Snapshot failed: ")
    assert await kernel.value("keep_me + 1") == 42
    assert await kernel.value(f"{REPORT_NAME!r} in globals()") is False


async def test_a_new_snapshot_replaces_the_previous_one(kernels: KernelFactory, tmp_path: Path) -> None:
    kernel = await kernels()
    await kernel.run("v = 1\n")
    await take_snapshot(kernel, tmp_path / "snap")
    await kernel.run("v = 2\n")
    await take_snapshot(kernel, tmp_path / "snap")
    assert len(list((tmp_path / "snap").glob("data-*"))) == 1
    await shutdown(kernel)
    second = await kernels()
    await restore_into(second, tmp_path / "snap")
    assert await second.value("v") == 2


async def test_restore_without_snapshot_fails_clearly(kernels: KernelFactory, tmp_path: Path) -> None:
    kernel = await kernels()
    with pytest.raises(
        SnapshotError, match="Restore failed in the kernel: FileNotFoundError: no snapshot at"
    ):
        await restore_into(kernel, tmp_path / "nothing-here")


async def test_forget_code_deletes_the_snapshot_from_inside_a_kernel(
    kernels: KernelFactory, tmp_path: Path
) -> None:
    kernel = await kernels()
    await kernel.run("v = 1\n")
    await take_snapshot(kernel, tmp_path / "snap")
    reply = await kernel.silent(forget_code(str(tmp_path / "snap"), user="mallory"), user_expressions())
    with pytest.raises(SnapshotError, match="Forget failed in the kernel: .*belongs to another user"):
        parse_report(reply.content["user_expressions"])
    assert (tmp_path / "snap" / "manifest.json").exists()
    reply = await kernel.silent(forget_code(str(tmp_path / "snap"), user="alice"), user_expressions())
    assert parse_report(reply.content["user_expressions"]).ok
    assert not (tmp_path / "snap").exists()
    assert await kernel.value("v") == 1


async def test_an_interrupted_snapshot_leaves_no_data_behind(kernels: KernelFactory, tmp_path: Path) -> None:
    kernel = await kernels()
    await kernel.run(
        "class Slow:\n    def __reduce__(self):\n        raise KeyboardInterrupt\nslow = Slow()\nv = 1\n"
    )
    reply = await kernel.silent(
        snapshot_code(str(tmp_path / "snap"), user="alice", max_bytes=None, exclude=()), user_expressions()
    )
    assert reply.content["status"] == "error" and reply.content["ename"] == "KeyboardInterrupt"
    with pytest.raises(SnapshotError, match="sent no snapshot report"):
        parse_report(reply.content["user_expressions"])
    assert list((tmp_path / "snap").iterdir()) == []
    assert await kernel.value("v") == 1
