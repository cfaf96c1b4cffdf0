"""Bucket snapshots are private to their user and kernel, and the bucket's secret never leaves the gateway."""

from __future__ import annotations

import ast
import base64
import json
import socket
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mlp_kernel.snapshot import SnapshotError, parse_report, restore_s3_code, user_expressions
from mlp_kernel.snapshot.s3 import FORMAT, S3StoreError

from . import s3_policy_check as check
from .conftest import KernelFactory, S3Server
from .s3_helpers import bucket_store, s3_restore, s3_snapshot


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_upload_grants_are_signed_scoped_to_the_kernel_and_short_lived(
    s3_server: S3Server, credentials_dir: Path
) -> None:
    bucket = s3_server.new_bucket()
    alice = bucket_store(s3_server, bucket, credentials_dir, url_expiry_s=600)
    upload = alice.prepare_upload(1_000_000)
    data, manifest = upload["data_post"]["fields"], upload["manifest_post"]["fields"]
    for fields in (data, manifest):
        assert check.signature_ok(fields, s3_server.secret), (
            "S3 would reject a policy not signed by the gateway"
        )
        expiration = datetime.fromisoformat(check.decode(fields)["expiration"].replace("Z", "+00:00"))
        assert expiration - datetime.now(timezone.utc) <= timedelta(seconds=601)
    mine = f"snaps/alice/k1/{upload['data']}/0001.pkl"
    assert upload["data_post"]["key_prefix"] == f"snaps/alice/k1/{upload['data']}/"
    assert check.allows(data, bucket=bucket, key=mine, size=1_000_000)
    assert not check.allows(data, bucket=bucket, key=mine, size=1_000_001), "the size cap is a condition"
    for elsewhere in (
        f"snaps/bob/k1/{upload['data']}/0001.pkl",  # another user
        f"snaps/alice/k2/{upload['data']}/0001.pkl",  # another kernel of the same user
        "snaps/alice/k1/manifest.json",  # the manifest has its own grant
        "snaps/alice/k1/data-000000000000/0001.pkl",  # another snapshot's data
    ):
        assert not check.allows(data, bucket=bucket, key=elsewhere, size=10), elsewhere
    assert not check.allows(data, bucket="other-bucket", key=mine, size=10)
    assert check.allows(manifest, bucket=bucket, key="snaps/alice/k1/manifest.json", size=500)
    assert not check.allows(manifest, bucket=bucket, key="snaps/bob/k1/manifest.json", size=500)
    late = datetime.now(timezone.utc) + timedelta(seconds=700)
    assert not check.allows(data, bucket=bucket, key=mine, size=10, now=late), "grants expire"


def test_the_server_itself_refuses_what_the_grants_do_not_allow(
    s3_server: S3Server, credentials_dir: Path
) -> None:
    """What the checker above decides, the real server enforces (moto enforced none of it): the agent's own
    upload function, with a grant for alice's kernel k1, can write nowhere else, nothing larger, nothing late,
    and a forged policy or a presigned GET moved to another key is refused."""
    from mlp_kernel.snapshot.agent import _TransferError
    from mlp_kernel.snapshot.agent_s3 import _download, _post

    bucket = s3_server.new_bucket()
    alice = bucket_store(s3_server, bucket, credentials_dir, url_expiry_s=600)
    upload = alice.prepare_upload(1000)
    data, manifest, run = upload["data_post"], upload["manifest_post"], upload["data"]
    mine = data["key_prefix"] + "0001.pkl"
    _post(data, mine, data=b"x" * 1000)
    entries = [{"name": "x", "file": "0001.pkl"}]
    body = {"format": FORMAT, "owner": "alice", "data": run, "entries": entries}
    _post(manifest, manifest["key"], data=json.dumps(body).encode())
    refused = {
        "another user": (data, f"snaps/bob/k1/{run}/0001.pkl", b"x"),
        "another kernel": (data, f"snaps/alice/k2/{run}/0001.pkl", b"x"),
        "the manifest with the data grant": (data, "snaps/alice/k1/manifest.json", b"{}"),
        "another snapshot's data": (data, "snaps/alice/k1/data-000000000000/0001.pkl", b"x"),
        "another user's manifest": (manifest, "snaps/bob/k1/manifest.json", b"{}"),
        "over the size cap": (data, data["key_prefix"] + "0002.pkl", b"x" * 1001),
    }
    policy = check.decode(data["fields"])
    policy["conditions"] = [c for c in policy["conditions"] if not isinstance(c, list)]  # no prefix, no cap
    forged = {
        **data,
        "fields": {**data["fields"], "policy": base64.b64encode(json.dumps(policy).encode()).decode()},
    }
    refused["a policy rewritten without its conditions"] = (forged, "snaps/bob/k1/x", b"x")
    late = bucket_store(s3_server, bucket, credentials_dir, kernel_id="k3", url_expiry_s=1).prepare_upload(10)
    time.sleep(2.5)
    refused["an expired grant"] = (late["data_post"], late["data_post"]["key_prefix"] + "0001.pkl", b"x")
    for why, (grant, key, body) in refused.items():
        with pytest.raises(_TransferError, match="refused by the snapshot bucket") as info:
            _post(grant, key, data=body)
        assert s3_server.secret not in str(info.value), why
    assert s3_server.keys(bucket) == sorted([mine, "snaps/alice/k1/manifest.json"])
    url = alice.restore_plan()["files"]["0001.pkl"]["url"]  # type: ignore[index]
    moved = url.replace("/snaps/alice/k1/", "/snaps/bob/k1/")
    with pytest.raises(_TransferError, match="refused by the snapshot bucket"):
        _download({"url": moved}, "/dev/null", "0001.pkl")


async def test_what_the_agent_uploads_meets_the_grants(
    kernels: KernelFactory, s3_server: S3Server, credentials_dir: Path
) -> None:
    bucket = s3_server.new_bucket()
    alice = bucket_store(s3_server, bucket, credentials_dir)
    kernel = await kernels()
    await kernel.run("import numpy as np\na = np.ones(50_000)\nb = {'x': 1}\ndef f():\n    return b")
    upload = alice.prepare_upload(2_000_000)
    from mlp_kernel.snapshot import snapshot_s3_code

    reply = await kernel.silent(
        snapshot_s3_code(upload, user="alice", max_bytes=2_000_000), user_expressions()
    )
    parse_report(reply.content["user_expressions"])
    objects = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert len(objects) == 4  # a, b, f and the manifest
    for obj in objects:
        grant = upload["manifest_post" if obj["Key"].endswith("manifest.json") else "data_post"]["fields"]
        assert check.allows(grant, bucket=bucket, key=obj["Key"], size=obj["Size"]), obj["Key"]


async def test_another_users_snapshot_can_be_neither_seen_nor_restored(
    kernels: KernelFactory, s3_server: S3Server, credentials_dir: Path
) -> None:
    bucket = s3_server.new_bucket()
    alice = bucket_store(s3_server, bucket, credentials_dir, user="alice")
    bob = bucket_store(s3_server, bucket, credentials_dir, user="bob")
    kernel = await kernels()
    await kernel.run("secret = 'alice-only'")
    await s3_snapshot(kernel, alice)
    # same kernel id, other user: another prefix, nothing there
    assert bob.base != alice.base and bob.keys() == [] and bob.restore_plan() is None
    # a copy of alice's snapshot planted in bob's prefix is refused by its owner
    client = s3_server.client()
    for key in alice.keys():
        client.copy_object(Bucket=bucket, Key=bob.base + key[len(alice.base) :],
                           CopySource={"Bucket": bucket, "Key": key})  # fmt: skip
    with pytest.raises(S3StoreError, match="belongs to another user"):
        bob.restore_plan()
    # and the kernel-side check refuses it too, should a plan ever name the wrong user
    plan = alice.restore_plan()
    assert plan is not None
    for info in plan["files"].values():
        assert urlsplit(info["url"]).path.startswith(f"/{bucket}/snaps/alice/k1/")
    victim = await kernels()
    reply = await victim.silent(restore_s3_code(plan, user="bob"), user_expressions())
    with pytest.raises(SnapshotError, match="belongs to another user"):
        parse_report(reply.content["user_expressions"])
    assert await victim.value("'secret' in globals()") is False


def test_user_names_never_escape_their_prefix(s3_server: S3Server, credentials_dir: Path) -> None:
    bucket = "any-bucket"
    names = ["../bob", "bob/k1", "bob", "%2E.%2Fbob", "a b", "ünï"]
    bases = {bucket_store(s3_server, bucket, credentials_dir, user=n).base for n in names}
    assert len(bases) == len(names)
    for base in bases:
        user_part = base.split("/")[1]
        assert base == f"snaps/{user_part}/k1/" and user_part not in (".", "..") and "/" not in user_part
    with pytest.raises(ValueError, match="invalid kernel id"):
        bucket_store(s3_server, bucket, credentials_dir, kernel_id="../k2")


async def test_the_secret_never_reaches_the_kernel_or_the_users_line(
    kernels: KernelFactory, s3_server: S3Server, credentials_dir: Path
) -> None:
    snaps = bucket_store(s3_server, s3_server.new_bucket(), credentials_dir)
    kernel = await kernels()
    await kernel.run("x = 1\nf = open('/dev/null')")
    report, code = await s3_snapshot(kernel, snaps)
    secret, key_id = s3_server.secret, s3_server.key_id
    plan = snaps.restore_plan()
    restore = restore_s3_code(plan, user="alice")  # type: ignore[arg-type]
    for text in (code, restore):
        assert secret not in text
        # SigV4 grants name the access key id (an identifier, not a secret), only in the credential scope
        in_scope = text.count(f"{key_id}/") + text.count(f"{key_id}%2F")
        assert text.count(key_id) == in_scope > 0, "the key id appears only in credential scopes"
    assert secret not in report.summary_line("saved")
    fresh = await kernels()
    restored = await s3_restore(fresh, snaps)
    assert secret not in restored.summary_line("restored")
    history = await fresh.value("list(In)") + await kernel.value("list(In)")
    assert not any("snapshot_s3" in cell or "X-Amz" in cell for cell in history), "grants stay out of history"
    assert secret not in repr(snaps.__dict__) and secret not in repr(snaps._clients())


def test_an_unreachable_endpoint_is_a_clear_message_without_secrets(
    s3_server: S3Server, credentials_dir: Path
) -> None:
    snaps = bucket_store(S3Server(f"http://127.0.0.1:{closed_port()}"), "snaps-x", credentials_dir)
    started = time.monotonic()
    with pytest.raises(S3StoreError) as info:
        snaps.prepare_upload(None)
    assert time.monotonic() - started < 60, "short connect timeouts and few retries"
    message = str(info.value)
    assert (
        "Cannot reach the snapshot bucket snaps-x at http://127.0.0.1:" in message and "reachable" in message
    )
    assert s3_server.secret not in message


async def test_a_bucket_the_kernel_cannot_reach_fails_the_snapshot_and_the_kernel_runs_on(
    kernels: KernelFactory, s3_server: S3Server, credentials_dir: Path
) -> None:
    bucket = s3_server.new_bucket()
    port = closed_port()
    snaps = bucket_store(s3_server, bucket, credentials_dir, kernel_endpoint=f"http://127.0.0.1:{port}")
    kernel = await kernels()
    await kernel.run("x = 41")
    from mlp_kernel.snapshot import snapshot_s3_code

    reply = await kernel.silent(
        snapshot_s3_code(snaps.prepare_upload(None), user="alice", max_bytes=None), user_expressions()
    )
    with pytest.raises(SnapshotError) as info:
        parse_report(reply.content["user_expressions"])
    message = str(info.value)
    assert f"cannot reach the snapshot bucket at 127.0.0.1:{port}" in message
    assert "X-Amz" not in message and "Signature" not in message and s3_server.secret not in message
    assert s3_server.keys(bucket) == []
    assert await kernel.value("x + 1") == 42
    assert ast.literal_eval(repr(await kernel.value("sorted(k for k in globals() if 'mlp' in k)"))) == []


def test_missing_credentials_in_the_default_chain_are_said(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from mlp_kernel.snapshot.s3 import S3Snapshots
    from mlp_kernel.snapshot.s3_config import CredentialSource, S3Settings

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings = S3Settings(bucket="snaps-x", endpoint=f"http://127.0.0.1:{closed_port()}",
                          credentials=CredentialSource(source="default"))  # fmt: skip
    with pytest.raises(S3StoreError, match="No credentials for the snapshot bucket snaps-x .* default"):
        S3Snapshots(settings, user="alice", kernel_id="k1").prepare_upload(None)
