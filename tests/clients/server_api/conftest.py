"""pytest-jupyter's server fixtures, scoped to this directory (its hooks then apply to these tests only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403

from ..conftest import install_kernelspec


@pytest.fixture
def server_kernelspec(jp_data_dir: Path, jp_environ: Any, reaper: Path) -> Path:
    """``gpu-auto-test`` in the test server's JUPYTER_DATA_DIR; returns tmp_path (root of every file)."""
    install_kernelspec(jp_data_dir)
    return reaper


@pytest.fixture
def jp_server_config(server_kernelspec: Path) -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {}}}


@pytest.fixture
def run(jp_asyncio_loop: Any) -> Any:
    """Run a coroutine on the server's loop (tests here are plain functions, see tests/server/conftest.py)."""
    return jp_asyncio_loop.run_until_complete
