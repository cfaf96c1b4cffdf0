"""The S3 server of the tests (``minio.py``): what other tests rely on it for, shown on the server itself."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.cluster.minio import Credentials, ObjectStore, prefix_policy, s3_server, s3_store  # noqa: F401


def _code(exc: pytest.ExceptionInfo[Exception]) -> str:
    return str(exc.value.response["Error"]["Code"])  # type: ignore[attr-defined]


def test_a_limited_user_reaches_its_own_prefix_and_nothing_else(s3_store: ObjectStore) -> None:  # noqa: F811
    from botocore.exceptions import ClientError

    bucket, other = s3_store.new_bucket("sync"), s3_store.new_bucket("sync")
    alice = s3_store.client(s3_store.add_user("alice-test", prefix_policy(bucket, "users/alice/")))
    alice.put_object(Bucket=bucket, Key="users/alice/data.csv", Body=b"a,b\n1,2\n")
    assert alice.get_object(Bucket=bucket, Key="users/alice/data.csv")["Body"].read() == b"a,b\n1,2\n"
    listed = alice.list_objects_v2(Bucket=bucket, Prefix="users/alice/")
    assert [o["Key"] for o in listed["Contents"]] == ["users/alice/data.csv"]
    s3_store.client().put_object(Bucket=bucket, Key="users/bob/secret.txt", Body=b"bob's")
    refused = {
        "another user's object": lambda: alice.get_object(Bucket=bucket, Key="users/bob/secret.txt"),
        "writing another prefix": lambda: alice.put_object(Bucket=bucket, Key="users/bob/x", Body=b"x"),
        "listing the whole bucket": lambda: alice.list_objects_v2(Bucket=bucket, Prefix="users/"),
        "another bucket": lambda: alice.put_object(Bucket=other, Key="users/alice/x", Body=b"x"),
        "making a bucket": lambda: alice.create_bucket(Bucket="sync-not-allowed"),
    }
    for why, call in refused.items():
        with pytest.raises(ClientError) as info:
            call()
        assert _code(info) == "AccessDenied", why
    alice.delete_object(Bucket=bucket, Key="users/alice/data.csv")
    assert s3_store.keys(bucket) == ["users/bob/secret.txt"]
    reader = s3_store.client(s3_store.add_user("reader-test", prefix_policy(bucket, "users/", write=False)))
    assert reader.get_object(Bucket=bucket, Key="users/bob/secret.txt")["Body"].read() == b"bob's"
    with pytest.raises(ClientError) as info:
        reader.put_object(Bucket=bucket, Key="users/bob/x", Body=b"x")
    assert _code(info) == "AccessDenied"


def test_signatures_are_checked_and_root_is_made_per_run(s3_store: ObjectStore) -> None:  # noqa: F811
    from botocore.exceptions import ClientError

    assert s3_store.root.access_key_id.startswith("root-") and len(s3_store.root.secret_access_key) >= 40
    assert s3_store.root.secret_access_key not in repr(s3_store)
    wrong = Credentials(s3_store.root.access_key_id, "not-" + s3_store.root.secret_access_key)
    with pytest.raises(ClientError) as info:
        s3_store.client(wrong).list_buckets()
    assert _code(info) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as info:
        s3_store.client(Credentials("NOSUCHKEY0000000", "x" * 40)).list_buckets()
    assert _code(info) == "InvalidAccessKeyId"


def test_the_server_stops_and_leaves_no_socket_behind(tmp_path: Path) -> None:
    with s3_server(tmp_path) as store:
        bucket = store.new_bucket()
        store.client().put_object(Bucket=bucket, Key="k", Body=b"v")
        port = int(store.endpoint.rsplit(":", 1)[1])
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    assert "Gracefully stopping" in store.log.read_text()
    assert not [p for p in Path("/tmp").glob("seaweedfs-*-grpc-*.sock") if _owned_by(p, store.log)]


def _owned_by(socket_path: Path, log: Path) -> bool:
    """Whether the server that wrote ``log`` made ``socket_path`` (other runs have their own)."""
    return str(socket_path) in log.read_text()
