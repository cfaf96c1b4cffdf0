"""The snapshot's ``files`` part and the ``Files:`` line of ``%gpu status`` from a real GPU (auto) kernel
(provisioner, gateway, local backend, a real ipykernel) started in the notebook's directory, as
jupyter_server starts it: the same disk on a private member; nothing of the notebook's on a public member
whose kernels start in an empty directory (``local_workdir: empty``, as a pod on a public cloud) with
``workspace_sync`` off. The working directory said is the one the kernel itself prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager

from mlp_kernel import protocol
from tests.gateway.conftest import Kernel, make_kernelspec, runtime_dir, shutdown_all, text_of  # noqa: F401

POLICY = """
version: 1
tiers: [bronze, gold]
members:
  private: {backend: local, public: false, display_name: this machine}
  aws: {backend: local, public: true, display_name: AWS, local_workdir: empty}
flavors:
  bronze: {member: private, tier: bronze, gpu_models: [RTX], price_per_gpu_hour: 0, capacity_gpus: 1}
  gold: {member: aws, tier: gold, gpu_models: [A100], price_per_gpu_hour: 4.10, capacity_gpus: 8}
burst: {enabled: true, threshold: 2s, deadline_horizon: 2h}
idle_timeout: 10m
default_request: {gpu_count: 1, gpu_model: RTX, burstable: false, budget: flex}
"""


async def start_in(base: Path, notebook_dir: Path, runtime: Path) -> Kernel:
    make_kernelspec(base, "gpu-auto-files", POLICY)
    km = AsyncKernelManager(
        kernel_name="gpu-auto-files",
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(base / "kernels")]),
    )
    await km.start_kernel(cwd=str(notebook_dir))
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    return Kernel(km, kc, runtime)


async def cell(k: Kernel, code: str) -> str:
    reply, outputs = await k.run(code, timeout=120)
    assert reply["content"]["status"] == "ok", text_of(outputs)
    return text_of(outputs)


def files_of(k: Kernel) -> dict[str, Any]:
    """The status file's snapshot (what the comm sends too), validated against the protocol's schema."""
    snap = k.status_file()
    jsonschema.validate(json.loads(json.dumps(snap)), protocol.json_schema())
    return snap["files"]  # type: ignore[no-any-return]


async def test_status_says_what_the_kernel_sees_of_the_notebooks_files_running_and_after(
    tmp_path: Path,
    runtime_dir: Path,  # noqa: F811  (the fixture)
) -> None:
    notebook_dir = tmp_path / "project"
    notebook_dir.mkdir()
    (notebook_dir / "data.csv").write_text("a,b\n1,2\n")
    k = await start_in(tmp_path, notebook_dir, runtime_dir)
    try:
        assert "Files" not in await cell(k, "%gpu status")  # no GPU kernel yet: nothing is claimed
        assert k.status_file()["files"] is None
        assert (await cell(k, "print(open('data.csv').read().split()[1])")).splitlines()[-1] == "1,2"
        here = str(notebook_dir.resolve())
        files = files_of(k)
        line = f"the notebook's directory {here} (this machine's disk, as the notebook server sees it)"
        assert files == {"mode": "local", "working_dir": here, "message": line}
        assert f"\nFiles: {line}" in await cell(k, "%gpu status")

        await cell(k, "%gpu release")
        assert f"\nFiles (the last GPU kernel): {line}" in await cell(k, "%gpu status")
        assert files_of(k)["mode"] == "local"

        # a public member whose kernels start empty, workspace_sync off: the user is told there is nothing
        await cell(k, "%gpu gpu=A100 burst=on")
        cwd = (await cell(k, "import os; print(os.getcwd()); print(os.listdir())")).splitlines()[-2:]
        assert cwd[0] != here and cwd[1] == "[]"
        files = files_of(k)
        assert files["mode"] == "none" and files["working_dir"] == cwd[0]
        assert files["message"] == (
            "none of the notebook's files are on this public GPU kernel (workspace_sync is off); "
            f"the kernel starts in {cwd[0]}"
        )
        assert f"\nFiles: {files['message']}" in await cell(k, "%gpu status")
    finally:
        await shutdown_all([k])
