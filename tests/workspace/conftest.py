"""Fixtures for workspace_sync: the real S3 server of ``tests/cluster/minio.py`` (in MinIO's place) with a
gateway user limited to one bucket's ``mlp/`` prefix, its keys presented as a Kubernetes Secret mount."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ci import require_module
from tests.cluster.minio import Credentials, ObjectStore, prefix_policy, s3_store  # noqa: F401  (a fixture)


@dataclass
class SyncBucket:
    store: ObjectStore
    bucket: str
    gateway: Credentials
    credentials_dir: Path

    def keys(self) -> list[str]:
        return self.store.keys(self.bucket)

    def storage(self) -> dict[str, object]:
        """The policy's ``workspace_sync.storage`` for this bucket (never a secret: a file path)."""
        return {
            "kind": "s3", "endpoint": self.store.endpoint, "bucket": self.bucket, "prefix": "mlp",
            "public": True, "credentials": {"from": "file", "path": str(self.credentials_dir)},
        }  # fmt: skip


@pytest.fixture
def sync_bucket(s3_store: ObjectStore, tmp_path: Path) -> SyncBucket:  # noqa: F811  (the fixture above)
    """A new bucket and a gateway user that may only list, read, write and delete under its ``mlp/``."""
    require_module("boto3", "workspace_sync needs boto3 (the s3 extra)")
    bucket = s3_store.new_bucket("sync")
    gateway = s3_store.add_user(f"sync-gateway-{uuid.uuid4().hex[:8]}", prefix_policy(bucket, "mlp/"))
    mount = tmp_path / "secret-mount"
    mount.mkdir(mode=0o700)
    (mount / "access_key_id").write_text(gateway.access_key_id + "\n")
    (mount / "secret_access_key").write_text(gateway.secret_access_key + "\n")
    return SyncBucket(s3_store, bucket, gateway, mount)
