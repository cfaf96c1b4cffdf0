"""The gateway's carry-over with ``snapshot.storage: {kind: s3}``: real kernels and a real S3 endpoint."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlp_kernel.gateway.carryover import CarryOver
from mlp_kernel.placement import PolicyError, parse_policy
from mlp_kernel.placement.types import GpuRequest

from .conftest import ROOT_POLICY, TEST_SECRET, Kernel, KernelFactory, Reply, S3Server


class ClientLink:
    """What ``CarryOver`` uses of the gateway's relay link, ``execute_silently``, over jupyter_client.

    The relay itself is tested in tests/gateway (and end to end in test_s3_gateway.py); here the generated
    code still runs in a real kernel, sent exactly as the relay sends it (silent, no history).
    """

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    async def execute_silently(self, code: str, timeout: float = 60.0, **extra: Any) -> Reply:
        return await self.kernel.execute(
            code, silent=True, store_history=False, user_expressions=extra.get("user_expressions"),
            timeout=timeout,
        )  # fmt: skip


def policy_with(storage: dict[str, Any]) -> Any:
    data = yaml.safe_load(ROOT_POLICY.read_text())
    data["data_classes"] = {"known": ["open", "phi"], "keep_private": ["phi"]}
    data["snapshot"] = {"storage": storage}
    return parse_policy(data)


def s3_storage(server: S3Server, bucket: str, credentials: Path, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "s3", "endpoint": server.endpoint, "bucket": bucket, "prefix": "mlp", "region": "us-east-1",
        "public": False, "credentials": {"from": "file", "path": str(credentials)}, **extra,
    }  # fmt: skip


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_variables_go_to_the_bucket_and_come_back_and_shutdown_deletes_them(
    kernels: KernelFactory, s3_server: S3Server, credentials_dir: Path
) -> None:
    bucket = s3_server.new_bucket()
    carry = CarryOver(policy_with(s3_storage(s3_server, bucket, credentials_dir)), "k1", "alice")
    first = await kernels()
    await first.run("import numpy as np\nv = np.arange(10)\ndef total():\n    return int(v.sum())")
    ok, line = await carry.save(ClientLink(first), GpuRequest(), public=False)
    assert ok and line.startswith("Saved 3 variables"), line
    assert "mlp/alice/k1/manifest.json" in s3_server.keys(bucket)
    second = await kernels()
    line = await carry.restore(ClientLink(second), GpuRequest(), public=False)
    assert line.startswith("Restored 3 variables"), line
    assert await second.value("total()") == 45
    carry.on_shutdown()
    assert s3_server.keys(bucket) == [], "the notebook's kernel shut down: its snapshot is deleted"


async def test_forget_drops_the_snapshot(
    kernels: KernelFactory, s3_server: S3Server, credentials_dir: Path
) -> None:
    bucket = s3_server.new_bucket()
    carry = CarryOver(policy_with(s3_storage(s3_server, bucket, credentials_dir)), "k1", "alice")
    kernel = await kernels()
    await kernel.run("x = 1")
    assert (await carry.save(ClientLink(kernel), GpuRequest(), public=False))[0]
    assert await carry.forget(None) == "Saved variables dropped; the next GPU kernel starts fresh."
    assert s3_server.keys(bucket) == []
    assert await carry.restore(ClientLink(await kernels()), GpuRequest(), public=False) == ""


async def test_a_private_data_class_never_reaches_a_public_member_or_a_public_bucket(
    kernels: KernelFactory, s3_server: S3Server, credentials_dir: Path
) -> None:
    kernel = await kernels()
    await kernel.run("patients = ['x']")
    link = ClientLink(kernel)
    phi = GpuRequest(data_class="phi")
    # a private bucket (MinIO on the private member), kernel on the public member
    private_bucket = s3_server.new_bucket()
    carry = CarryOver(policy_with(s3_storage(s3_server, private_bucket, credentials_dir)), "k1", "alice")
    ok, line = await carry.save(link, phi, public=True)
    assert ok and "must stay on the private cluster" in line, line
    # a public bucket (S3 on AWS), kernel on the private member
    public_bucket = s3_server.new_bucket()
    storage = s3_storage(s3_server, public_bucket, credentials_dir, public=True)
    carry = CarryOver(policy_with(storage), "k1", "alice")
    ok, line = await carry.save(link, phi, public=False)
    assert ok and "the snapshot bucket is outside it" in line, line
    assert s3_server.keys(private_bucket) == [] and s3_server.keys(public_bucket) == []
    # other data may use the public bucket from the private member
    ok, line = await carry.save(link, GpuRequest(data_class="open"), public=False)
    assert ok and line.startswith("Saved 1 variable"), line
    # and is never loaded on the public member when the notebook is labelled phi by then
    fresh = await kernels()
    line = await carry.restore(ClientLink(fresh), phi, public=True)
    assert "must stay on the private cluster" in line and "starts fresh" in line, line
    assert await fresh.value("'patients' in globals()") is False


async def test_a_private_bucket_is_not_used_from_a_public_member(
    kernels: KernelFactory, s3_server: S3Server, credentials_dir: Path
) -> None:
    bucket = s3_server.new_bucket()
    carry = CarryOver(policy_with(s3_storage(s3_server, bucket, credentials_dir)), "k1", "alice")
    kernel = await kernels()
    await kernel.run("x = 1")
    ok, line = await carry.save(ClientLink(kernel), GpuRequest(), public=True)
    assert ok and "lives on the private cluster" in line, line
    assert s3_server.keys(bucket) == []


async def test_an_unreachable_bucket_fails_the_snapshot_and_the_kernel_keeps_running(
    kernels: KernelFactory, s3_server: S3Server, credentials_dir: Path
) -> None:
    kernel = await kernels()
    await kernel.run("x = 41")
    link = ClientLink(kernel)
    # the gateway cannot reach it
    down = f"http://127.0.0.1:{closed_port()}"
    storage = {**s3_storage(s3_server, "snaps-down", credentials_dir), "endpoint": down}
    ok, line = await CarryOver(policy_with(storage), "k1", "alice").save(link, GpuRequest(), public=False)
    assert not ok
    assert line.startswith(f"Saving variables failed: Cannot reach the snapshot bucket snaps-down at {down}")
    assert line.endswith("The kernel keeps running."), line
    # the gateway can, the kernel cannot
    bucket = s3_server.new_bucket()
    storage = s3_storage(s3_server, bucket, credentials_dir, kernel_endpoint=down)
    ok, line = await CarryOver(policy_with(storage), "k1", "alice").save(link, GpuRequest(), public=False)
    assert not ok and "cannot reach the snapshot bucket at 127.0.0.1:" in line, line
    assert s3_server.secret not in line and "X-Amz" not in line
    assert s3_server.keys(bucket) == []
    reply = await link.execute_silently("y = x + 1", timeout=60)
    assert reply.content["status"] == "ok"
    assert await kernel.value("y") == 42


async def test_storage_mistakes_are_said_without_echoing_a_secret(
    kernels: KernelFactory, s3_server: S3Server, credentials_dir: Path
) -> None:
    kernel = await kernels()
    await kernel.run("x = 1")
    link = ClientLink(kernel)
    # the policy loader refuses a secret in the policy; a Policy built around it still never echoes it
    inline = {**s3_storage(s3_server, "b-x", credentials_dir), "secret_access_key": TEST_SECRET}
    with pytest.raises(PolicyError) as info:
        policy_with(inline)
    assert "snapshot.storage.secret_access_key" in str(info.value) and TEST_SECRET not in str(info.value)
    base = policy_with(s3_storage(s3_server, "b-x", credentials_dir))
    policy = replace(base, snapshot=replace(base.snapshot, storage=inline))
    ok, line = await CarryOver(policy, "k1", "alice").save(link, GpuRequest(), public=False)
    assert ok and "misconfigured" in line and "a secret must never be written into the policy" in line
    assert TEST_SECRET not in line
    env_creds = {**s3_storage(s3_server, "b-x", credentials_dir),
                 "credentials": {"from": "env", "access_key_id_env": "MLP_NO_SUCH_KEY_ID",
                                 "secret_access_key_env": "MLP_NO_SUCH_SECRET"}}  # fmt: skip
    ok, line = await CarryOver(policy_with(env_creds), "k1", "alice").save(link, GpuRequest(), public=False)
    assert not ok and "set MLP_NO_SUCH_KEY_ID and MLP_NO_SUCH_SECRET in the environment" in line, line
