"""Shared fixtures for the client-compatibility tests: a temporary "GPU (auto)" kernelspec, process hygiene.

Every client test installs a copy of the shipped ``kernelspecs/gpu-auto`` as ``gpu-auto-test`` in a temporary
Jupyter path (so the test never depends on, or changes, what is installed), runs one real client against it,
and then proves that nothing is left behind: no gateway process, no remote ipykernel (the local backend names
its connection files ``mlp-remote-*.json``). Whatever a failing test leaves is killed at teardown, so one
failure cannot leak processes into the next test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.ports import free_port  # noqa: F401  (also imported from here by other test modules)

REPO_SPEC = Path(__file__).resolve().parents[2] / "kernelspecs" / "gpu-auto"
KERNEL = "gpu-auto-test"
# Long enough that a slow, shared CI machine never releases the remote kernel between two cells of a test.
TEST_CONFIG: dict[str, Any] = {"idle_timeout": "10m", "backend": "local", "log_level": "WARNING"}
REMOTE_MARKER = "mlp-remote-"


def install_kernelspec(jupyter_path: Path, name: str = KERNEL, **config: Any) -> Path:
    """Copy the shipped kernelspec to ``jupyter_path/kernels/name`` with provisioner config overrides."""
    target = jupyter_path / "kernels" / name
    shutil.copytree(REPO_SPEC, target)
    spec = json.loads((target / "kernel.json").read_text())
    spec["display_name"] = f"GPU (auto) [{name}]"
    spec["metadata"]["kernel_provisioner"]["config"].update({**TEST_CONFIG, **config})
    (target / "kernel.json").write_text(json.dumps(spec, indent=2))
    return target


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def processes_under(root: Path, marker: str = "") -> list[psutil.Process]:
    """Live processes whose command line names a file under ``root`` (and contains ``marker``)."""
    prefix = str(root)
    found = []
    for p in psutil.process_iter():
        args = _cmdline(p)
        if any(a.startswith(prefix) and marker in a for a in args) and _alive(p):
            found.append(p)
    return found


def remote_kernels(root: Path) -> list[psutil.Process]:
    """The remote ipykernel processes the local backend started for kernels whose files are under root."""
    return processes_under(root, REMOTE_MARKER)


def wait_until_gone(pids: list[int], timeout: float = 60.0) -> list[int]:
    """Wait for the processes to end (zombies count as ended); return those still alive."""
    deadline = time.monotonic() + timeout
    left = list(pids)
    while left and time.monotonic() < deadline:
        left = [pid for pid in left if psutil.pid_exists(pid) and _alive(psutil.Process(pid))]
        if left:
            time.sleep(0.2)
    return left


def wait_gone_under(root: Path, marker: str = "", timeout: float = 60.0) -> list[psutil.Process]:
    """Wait until no process naming a file under ``root`` (with ``marker``) is left; return the stragglers.

    A client that only sends ``shutdown_request`` (jupyter console) exits before the kernel has finished
    shutting down, so "nothing left" is a state to wait for, not one to expect the instant the client ends.
    """
    deadline = time.monotonic() + timeout
    while True:
        left = processes_under(root, marker)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def wait_no_remote(root: Path, timeout: float = 60.0) -> list[psutil.Process]:
    """Wait until no remote kernel under ``root`` is left; return what is still alive after ``timeout``."""
    return wait_gone_under(root, REMOTE_MARKER, timeout)


def kill_tree(pid: int) -> None:
    """Kill a process, its process group and its descendants (best effort; used in finally blocks)."""
    try:
        proc = psutil.Process(pid)
        victims = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        victims = []
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for v in victims:
        try:
            v.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture
def reaper(tmp_path: Path) -> Iterator[Path]:
    """Yield tmp_path; at teardown kill every process that still names a file under it."""
    yield tmp_path
    for p in processes_under(tmp_path):
        kill_tree(p.pid)


@pytest.fixture
def gpu_kernelspec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reaper: Path) -> Path:
    """``gpu-auto-test`` on JUPYTER_PATH=tmp_path, runtime files in tmp_path/runtime; returns tmp_path."""
    install_kernelspec(tmp_path)
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    return tmp_path


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: starts several real processes (server, console); seconds each")
