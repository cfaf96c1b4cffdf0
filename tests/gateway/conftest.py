"""Fixtures: a real GPU (auto) kernel (provisioner + gateway + local backend) from a temporary kernelspec."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager

ROOT = Path(__file__).resolve().parents[2]


def make_kernelspec(
    base: Path, name: str = "gpu-auto-test", policy: str | None = None, **config: Any
) -> Path:
    """Copy kernelspecs/gpu-auto into ``base/kernels/name`` with provisioner ``config`` merged in."""
    dest = base / "kernels" / name
    shutil.copytree(ROOT / "kernelspecs" / "gpu-auto", dest)
    spec = json.loads((dest / "kernel.json").read_text())
    cfg = spec["metadata"]["kernel_provisioner"]["config"]
    cfg.update(config)
    if policy is not None:
        (dest / "test-policy.yaml").write_text(policy)
        cfg["policy"] = "test-policy.yaml"
    (dest / "kernel.json").write_text(json.dumps(spec))
    return dest


class Kernel:
    """A started kernel with its client and helpers that collect what a frontend would show."""

    def __init__(self, km: AsyncKernelManager, kc: Any, runtime: Path) -> None:
        self.km, self.kc, self.runtime = km, kc, runtime

    async def run(
        self, code: str, timeout: float = 90, **kw: Any
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        outputs: list[dict[str, Any]] = []
        reply = await self.kc.execute_interactive(code, output_hook=outputs.append, timeout=timeout, **kw)
        return reply, outputs

    @property
    def kernel_id(self) -> str:
        return str(self.km.kernel_id)

    def record(self) -> dict[str, Any] | None:
        path = self.runtime / f"mlp-kernel-remote-{self.kernel_id}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def status_file(self) -> dict[str, Any]:
        return json.loads((self.runtime / f"mlp-kernel-status-{self.kernel_id}.json").read_text())

    @property
    def gateway_pid(self) -> int:
        return int(self.km.provisioner.process.pid)  # type: ignore[union-attr]


def text_of(outputs: list[dict[str, Any]]) -> str:
    """Everything a user would read in the cell, as one string."""
    parts = []
    for m in outputs:
        c = m["content"]
        if m["msg_type"] == "stream":
            parts.append(c["text"])
        elif m["msg_type"] in ("display_data", "update_display_data", "execute_result"):
            parts.append(str(c["data"].get("text/plain", "")))
        elif m["msg_type"] == "error":
            parts.append(f"{c['ename']}: {c['evalue']}")
    return "\n".join(parts)


@pytest.fixture
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    return runtime


@pytest.fixture
async def start_kernel(tmp_path: Path, runtime_dir: Path) -> AsyncIterator[Callable[..., Any]]:
    started: list[Kernel] = []

    async def start(policy: str | None = None, **config: Any) -> Kernel:
        name = f"gpu-auto-test-{len(started)}"
        make_kernelspec(tmp_path, name, policy, **config)
        k = await launch(tmp_path, name, runtime_dir)
        started.append(k)
        return k

    yield start
    await shutdown_all(started)


async def launch(base: Path, name: str, runtime: Path) -> Kernel:
    """Start kernelspec ``name`` from ``base/kernels`` and wait until it answers, like a frontend does."""
    ksm = KernelSpecManager(kernel_dirs=[str(base / "kernels")])
    km = AsyncKernelManager(kernel_name=name, kernel_spec_manager=ksm)
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    return Kernel(km, kc, runtime)


async def shutdown_all(kernels: list[Kernel]) -> None:
    for k in kernels:
        k.kc.stop_channels()
        if await k.km.is_alive():
            await k.km.shutdown_kernel(now=False)
        else:
            await k.km.cleanup_resources()
