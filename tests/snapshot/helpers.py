"""Snapshot and restore a real kernel the way the gateway does, for the tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mlp_kernel.snapshot import (
    SnapshotReport,
    parse_report,
    restore_code,
    snapshot_code,
    user_expressions,
)

from .conftest import Kernel


async def take_snapshot(
    kernel: Kernel,
    path: Path,
    *,
    user: str = "alice",
    max_bytes: int | None = None,
    exclude: Sequence[str] = (),
) -> SnapshotReport:
    reply = await kernel.silent(
        snapshot_code(str(path), user=user, max_bytes=max_bytes, exclude=exclude), user_expressions()
    )
    assert reply.content["status"] == "ok", reply.content.get("traceback")
    assert reply.outputs == [], f"the snapshot printed something: {reply.outputs}"
    return parse_report(reply.content["user_expressions"])


async def restore_into(kernel: Kernel, path: Path, *, user: str = "alice") -> SnapshotReport:
    reply = await kernel.silent(restore_code(str(path), user=user), user_expressions())
    assert reply.content["status"] == "ok", reply.content.get("traceback")
    assert reply.outputs == [], f"the restore printed something: {reply.outputs}"
    return parse_report(reply.content["user_expressions"])
