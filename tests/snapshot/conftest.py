"""Real ipykernel processes for the snapshot tests: the generated code runs exactly as the gateway sends it.

``kernels()`` starts fresh kernels (AsyncKernelManager + client) in a directory where mlp_kernel is not
importable, so a test fails if the generated code needs our package. ``Kernel.silent`` sends a silent
execute_request with ``user_expressions`` as the gateway does and also returns what the kernel broadcast on
iopub for it, so tests can check that a snapshot prints nothing.

``s3_server`` is the real S3 server of ``tests/cluster/minio.py`` (in MinIO's place, one per session) with the
gateway's own limited user; ``credentials_dir`` presents that user's keys as a Secret mount would.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import AsyncKernelManager

from tests.ci import require_module
from tests.cluster.minio import Credentials, ObjectStore, s3_store  # noqa: F401  (s3_store: a fixture)

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
    dirs: list[str] = []
    workdir = tmp_path / "kernel-cwd"
    workdir.mkdir()

    async def start(env: dict[str, str] | None = None) -> Kernel:
        # Unix sockets, not TCP: jupyter_client picks free ports from the ephemeral range and the kernel
        # binds them a moment later, when any outgoing connection of the other test workers may hold one
        # ("Address already in use": the kernel dies before it answers; seen on CI). A short path: a Unix
        # socket's name has at most 107 bytes.
        sockets = tempfile.mkdtemp(prefix="mlpk-snap-", dir="/tmp")
        dirs.append(sockets)
        manager = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=f"{sockets}/k")
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
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


async def shutdown(kernel: Kernel) -> None:
    """Shut a kernel down for good, as a release does: the next kernel shares nothing with it."""
    kernel.client.stop_channels()
    await kernel.manager.shutdown_kernel(now=False)


def python_has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# ------------------------------------------------------------------------------------------- S3 bucket
#: a made-up secret for the tests that put one where it does not belong (the policy): it must never be echoed
TEST_SECRET = "mlp-test-secret-" + "7f3c9a1e5b2d4c6e8a0b"

#: what the admin gives the gateway (docs/snapshots.md, "Privacy between users"): its own user, never root,
#: with only Get/Put/DeleteObject under the snapshot prefix and ListBucket of that prefix, here for the
#: tests' buckets (``snaps-*``) and the two prefixes they use (``snaps``, ``mlp``)
GATEWAY_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::snaps-*"],
         "Condition": {"StringLike": {"s3:prefix": ["snaps/*", "mlp/*"]}}},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
         "Resource": ["arn:aws:s3:::snaps-*/snaps/*", "arn:aws:s3:::snaps-*/mlp/*"]},
    ],
}  # fmt: skip


@dataclass
class S3Server:
    """The snapshot tests' S3 server (``tests/cluster/minio.py``, in MinIO's place) and the gateway's user.

    ``gateway`` holds the credentials the gateway reads from its Secret mount (``credentials_dir``): a limited
    user of the server, so the tests also show the product needs no more than the snapshot buckets.
    ``client()`` is the server's root, for the tests' own looking and tampering.
    """

    endpoint: str
    store: ObjectStore | None = None
    gateway: Credentials = field(default_factory=lambda: Credentials("MLPTESTKEYID0001", TEST_SECRET))

    @property
    def key_id(self) -> str:
        return self.gateway.access_key_id

    @property
    def secret(self) -> str:
        return self.gateway.secret_access_key

    def _store(self) -> ObjectStore:
        assert self.store is not None, "no server behind this endpoint"
        return self.store

    def client(self) -> Any:
        return self._store().client()

    def new_bucket(self) -> str:
        return self._store().new_bucket("snaps")

    def keys(self, bucket: str) -> list[str]:
        return self._store().keys(bucket)


@pytest.fixture(scope="session")
def s3_server(s3_store: ObjectStore) -> S3Server:  # noqa: F811  (the fixture imported above)
    require_module("boto3", "S3 tests need boto3 (the s3 extra)")
    gateway = s3_store.add_user("snapshot-gateway", GATEWAY_POLICY)
    return S3Server(s3_store.endpoint, s3_store, gateway)


@pytest.fixture
def credentials_dir(tmp_path: Path, s3_server: S3Server) -> Path:
    """The gateway's bucket credentials as a Kubernetes Secret mount would present them: one file per key."""
    path = tmp_path / "secret-mount"
    path.mkdir(mode=0o700)
    (path / "access_key_id").write_text(s3_server.key_id + "\n")
    (path / "secret_access_key").write_text(s3_server.secret + "\n")
    return path


ROOT_POLICY = Path(__file__).resolve().parents[2] / "kernelspecs" / "gpu-auto" / "policy.yaml"
