"""Fixtures: a real jupyter_server with the mlp-kernel extension and a temp copy of the gpu-auto kernelspec.

pytest-jupyter's fixtures are imported here rather than loaded with ``pytest_plugins`` so that its collection
and call hooks apply to this directory only, and never change how other tests' coroutines are run.
The kernelspec is copied into the test's JUPYTER_DATA_DIR (found by jupyter_client's KernelSpecManager like an
installed one), so saves in tests never touch the repository.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403  (fixtures and hooks, scoped to this directory)

REPO_SPEC = Path(__file__).resolve().parents[2] / "kernelspecs" / "gpu-auto"
ADMIN = "alice"
USER = "bob"


@pytest.fixture
def spec_dir(jp_data_dir: Path) -> Path:
    target = jp_data_dir / "kernels" / "gpu-auto"
    shutil.copytree(REPO_SPEC, target)
    return target


@pytest.fixture
def history_dir(tmp_path: Path) -> Path:
    return tmp_path / "history"


@pytest.fixture
def jp_server_config(spec_dir: Path, history_dir: Path) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"mlp_kernel": True},
            "identity_provider_class": "tests.server.header_identity.HeaderIdentityProvider",
        },
        "MlpKernelExtension": {
            "admin_users": [ADMIN],
            "history_dir": str(history_dir),
            "metrics_interval": 0,
        },
    }


@pytest.fixture
def run(jp_asyncio_loop: Any) -> Any:
    """Run a coroutine on the server's loop.

    Tests here are plain functions: the project runs pytest-asyncio in auto mode, whose loop is not the one
    pytest-jupyter's server runs on, so an ``async def`` test would wait on a server that never answers.
    The loop is made the thread's current one: a call like ``run(client.fetch(...))`` makes its Future
    before the loop runs, and an earlier test on the same worker may have left no current loop.
    """
    asyncio.set_event_loop(jp_asyncio_loop)
    return jp_asyncio_loop.run_until_complete


@pytest.fixture
def api(jp_fetch: Any, run: Any) -> Any:
    """``api(method, path, user=..., body=..., groups=...)`` -> (status, json or text); never raises on HTTP
    errors.

    ``path`` is relative to ``/mlp-kernel/api/``, or to the server's base URL when it starts with ``/``.
    ``groups`` are the user's groups as its identity carries them (``header_identity.py``).
    """
    from tornado.httpclient import HTTPClientError

    async def fetch(method: str, path: str, user: str, body: Any, groups: str) -> tuple[int, Any]:
        headers = {"X-Mlp-Test-User": user, **({"X-Mlp-Test-Groups": groups} if groups else {})}
        kwargs: dict[str, Any] = {"method": method, "headers": headers}
        if body is not None:
            kwargs["body"] = json.dumps(body)
        elif method in ("POST", "PUT"):
            kwargs["body"] = "{}"
        prefix = [] if path.startswith("/") else ["mlp-kernel", "api"]
        parts = [*prefix, *path.strip("/").split("/")]
        try:
            r = await jp_fetch(*parts, **kwargs)
        except HTTPClientError as e:
            assert e.response is not None, e
            return e.code, _decode(e.response.body)
        return r.code, _decode(r.body)

    def call(
        method: str, path: str, user: str = ADMIN, body: Any = None, groups: str = ""
    ) -> tuple[int, Any]:
        return run(fetch(method, path, user, body, groups))

    return call


def _decode(body: bytes | None) -> Any:
    text = (body or b"").decode()
    try:
        return json.loads(text)
    except ValueError:
        return text
