"""Snapshot to and restore from a real S3 endpoint the way the gateway does, for the tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlp_kernel.snapshot import (
    SnapshotReport,
    parse_report,
    restore_s3_code,
    snapshot_s3_code,
    user_expressions,
)
from mlp_kernel.snapshot.s3 import S3Snapshots
from mlp_kernel.snapshot.s3_config import CredentialSource, S3Settings

from .conftest import Kernel, S3Server


def bucket_store(
    server: S3Server,
    bucket: str,
    credentials: Path,
    *,
    user: str = "alice",
    kernel_id: str = "k1",
    **settings: Any,
) -> S3Snapshots:
    """The gateway's view of one kernel's snapshot in ``bucket``; credentials from a Secret-like mount."""
    config = S3Settings(
        bucket=bucket, prefix="snaps", endpoint=server.endpoint, public=False, addressing_style="path",
        credentials=CredentialSource(source="file", path=str(credentials)), **settings,
    )  # fmt: skip
    return S3Snapshots(config, user=user, kernel_id=kernel_id)


async def s3_snapshot(
    kernel: Kernel, snaps: S3Snapshots, *, max_bytes: int | None = None, exclude: Sequence[str] = ()
) -> tuple[SnapshotReport, str]:
    """Take a snapshot into the bucket; returns the report and the code that was sent to the kernel."""
    code = snapshot_s3_code(
        snaps.prepare_upload(max_bytes), user=snaps.user, max_bytes=max_bytes, exclude=exclude
    )
    reply = await kernel.silent(code, user_expressions())
    assert reply.content["status"] == "ok", reply.content.get("traceback")
    assert reply.outputs == [], f"the snapshot printed something: {reply.outputs}"
    return parse_report(reply.content["user_expressions"]), code


async def s3_restore(kernel: Kernel, snaps: S3Snapshots) -> SnapshotReport:
    plan = snaps.restore_plan()
    assert plan is not None, "no snapshot in the bucket"
    reply = await kernel.silent(restore_s3_code(plan, user=snaps.user), user_expressions())
    assert reply.content["status"] == "ok", reply.content.get("traceback")
    assert reply.outputs == [], f"the restore printed something: {reply.outputs}"
    return parse_report(reply.content["user_expressions"])
