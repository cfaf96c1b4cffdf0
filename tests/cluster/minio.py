"""A real S3 server for the tests, standing in for the platform's MinIO (see docs/test-kube-api.md, "MinIO").

The platform keeps its objects in MinIO (private member) and S3 (AWS). MinIO's server is AGPL-3.0, which this
project does not build or ship, so the tests run another real, permissively licensed S3 server built from its
Go module like the control plane (``tests/cluster/build.py``): SeaweedFS's S3 gateway (Apache-2.0), one
``weed server -s3`` process (master, volume server, filer and S3 API) on free local ports with a temporary
data directory. What the product relies on is plain S3 (SigV4, path-style addressing, presigned GET and
browser POST with policy conditions, ListObjectsV2, DeleteObjects) and both servers enforce it; nothing in
the product is MinIO- or SeaweedFS-specific. Unlike moto, this server checks signatures, POST policy
conditions and each user's own IAM policy.

The API, for every test that needs object storage::

    with s3_server(tmp_dir) as store:           # or the ``s3_store`` fixture below (one per session)
        bucket = store.new_bucket("sync")
        alice = store.add_user("alice", prefix_policy(bucket, "users/alice/"))
        store.client(alice).put_object(Bucket=bucket, Key="users/alice/x", Body=b"...")
        store.endpoint, store.root, alice.access_key_id, alice.secret_access_key

The root credentials are generated per run (SeaweedFS reads them from ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` as MinIO reads ``MINIO_ROOT_USER`` / ``MINIO_ROOT_PASSWORD``); limited users are
made through the server's IAM API (CreateUser, CreateAccessKey, PutUserPolicy with an AWS policy document;
on MinIO the same is ``mc admin user add`` + ``mc admin policy create/attach``).

Without the built server (no Go toolchain) the tests skip with one line saying why; with ``CI`` set they fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from . import build
from .plane import _die_with_parent, free_port

REGION = "us-east-1"
START_TIMEOUT_S = 90


@dataclass(frozen=True)
class Credentials:
    """An access key pair; the secret stays out of ``repr`` (and so out of pytest's failure output)."""

    access_key_id: str
    secret_access_key: str = field(repr=False)


def prefix_policy(bucket: str, prefix: str, *, write: bool = True) -> dict[str, Any]:
    """An IAM policy for one key prefix of one bucket: list and read it, and (``write``) put and delete."""
    actions = ["s3:GetObject"] + (["s3:PutObject", "s3:DeleteObject"] if write else [])
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
                "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            },
            {"Effect": "Allow", "Action": actions, "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"]},
        ],
    }


@dataclass
class ObjectStore:
    """A running S3 server: its endpoint, root credentials, and helpers to make buckets and limited users."""

    endpoint: str
    root: Credentials
    data_dir: Path
    log: Path
    region: str = REGION

    def client(self, credentials: Credentials | None = None, service: str = "s3") -> Any:
        """A boto3 client (path-style, SigV4) as ``credentials`` (the root user by default)."""
        import boto3
        from botocore.config import Config

        creds = credentials or self.root
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=creds.access_key_id, aws_secret_access_key=creds.secret_access_key,
            config=Config(
                signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 2}
            ),
        )  # fmt: skip

    def new_bucket(self, prefix: str = "test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def add_user(self, name: str, policy: dict[str, Any]) -> Credentials:
        """A new user allowed only what ``policy`` (an AWS IAM policy document) allows; its fresh key pair."""
        iam = self.client(service="iam")
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        creds = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
        self._wait_until_known(creds)
        return creds

    def _wait_until_known(self, creds: Credentials, timeout: float = 10.0) -> None:
        """IAM changes reach the S3 handlers through the filer's metadata feed: wait until the key signs."""
        from botocore.exceptions import ClientError

        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client(creds).list_buckets()
                return
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code not in ("InvalidAccessKeyId", "SignatureDoesNotMatch") or time.monotonic() > deadline:
                    if code == "AccessDenied":  # known, and not allowed to list buckets: that is fine
                        return
                    raise
            time.sleep(0.1)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def weed_binary() -> Path:
    """The built ``weed``; built now when missing and Go is there; else a skip (a failure on CI)."""
    component = build.SEAWEEDFS
    if not component.built:
        reason = build.missing_reason((component,))
        if reason:
            if os.environ.get("CI"):
                pytest.fail(f"the S3 server is required on CI: {reason}", pytrace=False)
            pytest.skip(reason)
        build.build((component,), log=lambda line: print(line, file=sys.stderr))
    return component.binary("weed")


@contextlib.contextmanager
def s3_server(workdir: Path, *, timeout: float = START_TIMEOUT_S) -> Iterator[ObjectStore]:
    """Start ``weed server -s3`` on free ports under ``workdir``; yield it when it serves S3; stop it."""
    weed = weed_binary()
    data, log = workdir / "data", workdir / "weed.log"
    data.mkdir(parents=True, exist_ok=True)
    root = Credentials("root-" + secrets.token_hex(6), secrets.token_urlsafe(30))
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    grpc = {name: free_port() for name in ports}
    argv = [
        str(weed), "server", "-s3", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
        "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=400",
        "-s3.autoCreateBucket=false",  # as MinIO: an upload to a missing bucket is NoSuchBucket
        "-s3.iam.readOnly=false",  # the embedded IAM API makes the tests' limited users
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-volume.preStopSeconds=0",
        *(f"-{name}.port={port}" for name, port in ports.items()),
        *(f"-{name}.port.grpc={port}" for name, port in grpc.items()),
        f"-s3.localSocket={workdir / 's3.sock'}", f"-filer.localSocket={workdir / 'filer.sock'}",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEED_"))}
    env.update(AWS_ACCESS_KEY_ID=root.access_key_id, AWS_SECRET_ACCESS_KEY=root.secret_access_key)
    # each bucket is a collection, for which the master grows 7 volumes at once by default: the tests make
    # many small buckets, so one (sparse, 64 MB) volume each, at most 400 in all
    env["WEED_MASTER_VOLUME_GROWTH_COPY_1"] = "1"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir, env=env,
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
    store = ObjectStore(f"http://127.0.0.1:{ports['s3']}", root, data, log)
    try:
        _wait_ready(store, proc, timeout)
        yield store
    finally:
        proc.terminate()  # its services stop in a second; then it may wait on nothing for 10 s more
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for name, port in grpc.items():  # weed puts one Unix socket per gRPC service in /tmp, whatever TMPDIR
            Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock").unlink(missing_ok=True)


def _wait_ready(store: ObjectStore, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Ready when /healthz answers and a signed ListBuckets (the filer behind it) succeeds as root."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed server exited with {proc.returncode}:\n{store.log_tail()}")
        try:
            with urllib.request.urlopen(store.endpoint + "/healthz", timeout=2) as response:
                if response.status == 200:
                    store.client().list_buckets()
                    return
        except Exception as exc:  # not up yet: refused, 503, or the filer not connected
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"weed server did not serve S3 within {timeout:.0f} s ({last!r}):\n{store.log_tail()}")


@pytest.fixture(scope="session")
def s3_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
    """One S3 server for the whole session (start-up takes seconds); each test makes its own bucket."""
    with s3_server(Path(tmp_path_factory.mktemp("s3-server"))) as store:
        yield store
