"""The grants the kernel gets for ``workspace_sync`` hold only what they must, on a real S3 server.

The gateway's side (``SyncBucket``) as the gateway's limited user; the kernel's side with the in-kernel
agent's own ``_post`` and ``_download`` (standard library), so what the server refuses is what a kernel
trying more would be refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlp_kernel.snapshot.agent import _TransferError
from mlp_kernel.snapshot.agent_s3 import _download, _post
from mlp_kernel.snapshot.s3 import S3Snapshots, S3StoreError
from mlp_kernel.snapshot.s3_config import parse_s3_storage
from mlp_kernel.snapshot.sync_s3 import SyncBucket

from .conftest import SyncBucket as Bucket


def sync_of(bucket: Bucket, kernel_id: str = "k1") -> SyncBucket:
    return SyncBucket(parse_s3_storage(bucket.storage()), user="alice", kernel_id=kernel_id)


def test_files_in_and_out_and_nothing_left(sync_bucket: Bucket, tmp_path: Path) -> None:
    root = tmp_path / "nb"
    (root / "d").mkdir(parents=True)
    (root / "d" / "data.csv").write_text("a,b\n1,2\n")
    sync = sync_of(sync_bucket)
    sent = sync.upload(root, {"d/data.csv": 8})
    assert sent["d/data.csv"]["key"] == "mlp/alice/k1~workspace/in/f00000", "no user text in keys"
    plan = sync.fetch_plan(sent)
    _download(plan["d/data.csv"], str(tmp_path / "got"), "d/data.csv")
    assert (tmp_path / "got").read_text() == "a,b\n1,2\n"
    grant = sync.back_grant(max_file_bytes=16)
    result = tmp_path / "result.txt"
    result.write_text("42\n")
    _post(grant, grant["key_prefix"] + "f00000", path=str(result))
    path, digest = sync.download(grant["key_prefix"] + "f00000", tmp_path, 3)
    assert path.read_text() == "42\n" and len(digest) == 64
    sync.clear()
    assert sync_bucket.keys() == []


def test_the_kernel_cannot_write_elsewhere_or_more_than_the_cap(sync_bucket: Bucket, tmp_path: Path) -> None:
    sync = sync_of(sync_bucket)
    grant = sync.back_grant(max_file_bytes=16)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 17)
    with pytest.raises(_TransferError, match="refused"):
        _post(grant, grant["key_prefix"] + "f00000", path=str(big))
    with pytest.raises(_TransferError, match="refused"):  # another kernel's prefix, or the snapshot's
        _post(grant, "mlp/alice/k2~workspace/back/f00000", data=b"x")
    with pytest.raises(_TransferError, match="refused"):
        _post(grant, "mlp/alice/k1/manifest.json", data=b"{}")
    assert sync_bucket.keys() == []
    with pytest.raises(S3StoreError, match="outside its workspace prefix"):
        sync.download("mlp/alice/k1/manifest.json", tmp_path, 2)


def test_a_sync_and_a_snapshot_of_the_same_kernel_never_delete_each_other(
    sync_bucket: Bucket, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("a")
    settings = parse_s3_storage(sync_bucket.storage())
    snaps = S3Snapshots(settings, user="alice", kernel_id="k1")
    sync = sync_of(sync_bucket)
    snaps._clients()[0].put_object(Bucket=settings.bucket, Key=snaps.base + "data-x/v", Body=b"1")
    sync.upload(tmp_path, {"a.txt": 1})
    snaps.clear()
    assert sync_bucket.keys() == ["mlp/alice/k1~workspace/in/f00000"]
    snaps._clients()[0].put_object(Bucket=settings.bucket, Key=snaps.base + "data-x/v", Body=b"1")
    sync.clear()
    assert sync_bucket.keys() == ["mlp/alice/k1/data-x/v"]
    snaps.clear()
