"""Real ipykernel processes for the snapshot tests: the generated code runs exactly as the gateway sends it.

``kernels()`` starts fresh kernels (AsyncKernelManager + client) in a directory where mlp_kernel is not
importable, so a test fails if the generated code needs our package. ``Kernel.silent`` sends a silent
execute_request with ``user_expressions`` as the gateway does and also returns what the kernel broadcast on
iopub for it, so tests can check that a snapshot prints nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import AsyncKernelManager

TIMEOUT = 120


@dataclass
class Reply:
    content: dict[str, Any]
    outputs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Kernel:
    manager: AsyncKernelManager
    client: Any

    @property
    def pid(self) -> int:
        return self.manager.provisioner.process.pid  # type: ignore[union-attr]

    async def execute(
        self,
        code: str,
        *,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: dict[str, str] | None = None,
        timeout: float = TIMEOUT,
    ) -> Reply:
        msg_id = self.client.execute(
            code, silent=silent, store_history=store_history, user_expressions=user_expressions or {}
        )
        reply = await self.client._async_get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = await self.client._async_get_shell_msg(timeout=timeout)
        outputs = []
        while True:
            msg = await self.client._async_get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            if msg["msg_type"] in ("stream", "display_data", "execute_result", "error"):
                outputs.append(msg)
        return Reply(reply["content"], outputs)

    async def silent(self, code: str, user_expressions: dict[str, str], timeout: float = TIMEOUT) -> Reply:
        return await self.execute(
            code, silent=True, store_history=False, user_expressions=user_expressions, timeout=timeout
        )

    async def run(self, code: str) -> Reply:
        """Run a cell as a user would; fail the test if it raised."""
        reply = await self.execute(code)
        assert reply.content["status"] == "ok", reply.content.get("traceback")
        return reply

    async def value(self, expr: str) -> Any:
        """The JSON value of ``expr`` in the kernel (evaluated as a user expression: no side effects)."""
        reply = await self.execute(
            "",
            silent=True,
            store_history=False,
            user_expressions={"v": f"__import__('json').dumps(({expr}))"},
        )
        result = reply.content["user_expressions"]["v"]
        assert result["status"] == "ok", result
        import ast

        return json.loads(ast.literal_eval(result["data"]["text/plain"]))

    async def names(self) -> set[str]:
        """User-visible names in the namespace (what %who would list, plus underscore names we might leak)."""
        return set(
            await self.value(
                "[n for n in get_ipython().user_ns if n not in get_ipython().user_ns_hidden "
                "and not (n.startswith('_') and n.rstrip('_') == '') and not n.startswith('_i')]"
            )
        )


KernelFactory = Callable[..., Awaitable[Kernel]]


@pytest.fixture
async def kernels(tmp_path: Path) -> AsyncIterator[KernelFactory]:
    started: list[Kernel] = []
    workdir = tmp_path / "kernel-cwd"
    workdir.mkdir()

    async def start(env: dict[str, str] | None = None) -> Kernel:
        manager = AsyncKernelManager(kernel_name="python3")
        kernel_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        kernel_env.update(env or {})
        await manager.start_kernel(cwd=str(workdir), env=kernel_env)
        client = manager.client()
        client.start_channels()
        await client.wait_for_ready(timeout=TIMEOUT)
        kernel = Kernel(manager, client)
        started.append(kernel)
        return kernel

    yield start
    for kernel in started:
        kernel.client.stop_channels()
        if await kernel.manager.is_alive():
            await kernel.manager.shutdown_kernel(now=True)


async def shutdown(kernel: Kernel) -> None:
    """Shut a kernel down for good, as a release does: the next kernel shares nothing with it."""
    kernel.client.stop_channels()
    await kernel.manager.shutdown_kernel(now=False)


def python_has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# ------------------------------------------------------------------------------------------- S3 bucket
TEST_SECRET = "mlp-test-secret-" + "7f3c9a1e5b2d4c6e8a0b"  # grep-able: must never reach a kernel or a message
TEST_KEY_ID = "MLPTESTKEYID0001"


@dataclass
class S3Server:
    """A real S3 HTTP endpoint (moto's server mode) on a free local port."""

    endpoint: str

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=TEST_KEY_ID,
            aws_secret_access_key=TEST_SECRET, config=Config(signature_version="s3v4"),
        )  # fmt: skip

    def new_bucket(self) -> str:
        import uuid

        name = f"snaps-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


@pytest.fixture(scope="session")
def s3_server() -> Any:
    moto_server = pytest.importorskip("moto.server", reason="S3 tests need moto[server] (test extra)")
    pytest.importorskip("boto3", reason="S3 tests need boto3 (the s3 extra)")
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield S3Server(f"http://127.0.0.1:{port}")
    server.stop()


@pytest.fixture
def credentials_dir(tmp_path: Path) -> Path:
    """The bucket credentials as a Kubernetes Secret mount would present them: one file per key."""
    path = tmp_path / "secret-mount"
    path.mkdir(mode=0o700)
    (path / "access_key_id").write_text(TEST_KEY_ID + "\n")
    (path / "secret_access_key").write_text(TEST_SECRET + "\n")
    return path


ROOT_POLICY = Path(__file__).resolve().parents[2] / "kernelspecs" / "gpu-auto" / "policy.yaml"
