"""End to end: the notebook's files on a GPU kernel of a public member, through a real S3 server.

A real GPU (auto) kernel (provisioner, gateway, local backend) started in the notebook's directory, with a
policy whose only GPU for the request is on a public member (``backend: local``, ``local_workdir: empty``: the
kernel starts in a new empty directory, as a pod on AWS starts with nothing of the user's) and
``workspace_sync`` on, through a bucket of the tests' S3 server where the gateway's user may only touch
``mlp/``. What the user would see is what is checked: the start-up line, the files in the kernel's working
directory, the release line, the files next to the notebook, and an empty prefix afterwards.
"""

from __future__ import annotations

import ast
import json
import os
import socket
from pathlib import Path
from typing import Any

import yaml
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager

from tests.gateway.conftest import Kernel, make_kernelspec, runtime_dir, text_of  # noqa: F401  (a fixture)

from .conftest import SyncBucket

POLICY = """
version: 1
tiers: [bronze, gold]
members:
  private: {backend: local, public: false}
  aws: {backend: local, public: true, display_name: AWS, local_workdir: empty}
flavors:
  bronze: {member: private, tier: bronze, gpu_models: [RTX], price_per_gpu_hour: 0, capacity_gpus: 1}
  gold: {member: aws, tier: gold, gpu_models: [A100], price_per_gpu_hour: 4.10, capacity_gpus: 8}
burst: {enabled: true, threshold: 2s, deadline_horizon: 2h}
data_classes: {known: [open, phi], keep_private: [phi]}
idle_timeout: 10m
default_request: {gpu_count: 1, gpu_model: A100, burstable: true, budget: flex}
"""


def policy(bucket: SyncBucket) -> str:
    data = yaml.safe_load(POLICY)
    data["workspace_sync"] = {
        "enabled": True, "max_file_size": "1Ki", "private_only": ["*.phi.*"], "storage": bucket.storage(),
    }  # fmt: skip
    return yaml.safe_dump(data)


async def start_in(base: Path, notebook_dir: Path, runtime: Path, policy_text: str) -> Kernel:
    """Start the kernelspec as jupyter_server does for a notebook: with the notebook's directory as cwd."""
    make_kernelspec(base, "gpu-auto-sync", policy_text)
    ksm = KernelSpecManager(kernel_dirs=[str(base / "kernels")])
    km = AsyncKernelManager(kernel_name="gpu-auto-sync", kernel_spec_manager=ksm)
    await km.start_kernel(cwd=str(notebook_dir))
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    return Kernel(km, kc, runtime)


def value(outputs: list[dict[str, Any]]) -> Any:
    results = [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"]
    assert len(results) == 1, outputs
    return json.loads(ast.literal_eval(results[0]))


async def test_files_go_to_a_burst_kernel_and_results_come_back(
    tmp_path: Path,
    runtime_dir: Path,  # noqa: F811  (the fixture imported above)
    sync_bucket: SyncBucket,
) -> None:
    nb = tmp_path / "notebooks" / "project"
    nb.mkdir(parents=True)
    (nb / "data.csv").write_text("a,b\n1,2\n")
    (nb / "notes.txt").write_text("from the notebook server\n")
    (nb / "patients.phi.csv").write_text("name\nsomeone\n")  # private-only: must never leave
    (nb / "big.bin").write_bytes(b"x" * 2048)  # over the 1 KiB file cap
    (nb / ".env").write_text("TOKEN=not-for-the-cloud\n")  # a built-in secret pattern
    (nb / ".ipynb_checkpoints").mkdir()
    (nb / ".ipynb_checkpoints" / "x-checkpoint.ipynb").write_text("{}")
    outside = tmp_path / "outside.txt"
    outside.write_text("outside the notebook's directory\n")
    (nb / "escape.txt").symlink_to(outside)
    k = await start_in(tmp_path, nb, runtime_dir, policy(sync_bucket))
    try:
        reply, outputs = await k.run(
            "import json, os\njson.dumps({'cwd': os.getcwd(), 'files': sorted(os.listdir('.')), "
            "'data': open('data.csv').read()})",
            timeout=180,
        )
        start_line = text_of(outputs)
        assert reply["content"]["status"] == "ok", start_line
        seen = value(outputs)
        # the kernel runs on the public member, in a directory of its own, with exactly the allowed files
        assert "Burst to aws/gold" in start_line or "aws/gold" in start_line, start_line
        assert Path(seen["cwd"]).resolve() != nb.resolve() and "mlp-workdir-" in seen["cwd"], seen
        assert seen["files"] == ["data.csv", "notes.txt"], seen
        assert seen["data"] == "a,b\n1,2\n"
        # and the user was told what was taken, what was not and why
        assert "2 files (" in start_line and "copied to the GPU kernel" in start_line, start_line
        assert "patients.phi.csv (private-only: never leaves the private cluster)" in start_line, start_line
        assert "big.bin (over the 1.0 KiB file cap)" in start_line, start_line
        assert "escape.txt (a symbolic link, never followed)" in start_line, start_line
        assert ".env (excluded)" in start_line, start_line
        assert sync_bucket.keys() == [], "the kernel fetched its files: nothing stays in the bucket"
        reply, outputs = await k.run("%gpu status")
        status_text = text_of(outputs)
        assert f"Files: copies in {seen['cwd']}: 2 files (" in status_text, status_text
        assert "patients.phi.csv (private-only" in status_text, status_text
        # the snapshot's files part (the panel's Files section): what was taken, what was not and why
        files = k.status_file()["files"]
        assert files["mode"] == "synced" and files["working_dir"] == seen["cwd"], files
        assert (files["files_taken"], files["bytes_taken"]) == (2, len("a,b\n1,2\n") + 25), files
        left = {item["path"]: item["reason"] for item in files["left_out"]}
        assert left == {
            ".env": "excluded", "big.bin": "over the 1.0 KiB file cap",
            "escape.txt": "a symbolic link, never followed",
            "patients.phi.csv": "private-only: never leaves the private cluster",
        } and files["left_out_count"] == 4, files  # fmt: skip

        reply, outputs = await k.run(
            "os.makedirs('out', exist_ok=True)\n"
            "open('out/result.csv', 'w').write('answer\\n42\\n')\n"
            "open('notes.txt', 'w').write('edited on the GPU\\n')"
        )
        assert reply["content"]["status"] == "ok", text_of(outputs)
        (nb / "notes.txt").write_text("edited here meanwhile\n")  # the user edits it on the server too

        reply, outputs = await k.run("%gpu release", timeout=180)
        released = text_of(outputs)
        assert reply["content"]["status"] == "ok", released
        assert "2 files came back from the GPU kernel (out/result.csv)" in released, released
        assert "Changed here meanwhile, so not overwritten: notes.txt -> notes (from GPU).txt" in released
        assert (nb / "out" / "result.csv").read_text() == "answer\n42\n"
        assert (nb / "notes.txt").read_text() == "edited here meanwhile\n", "a local change is never lost"
        assert (nb / "notes (from GPU).txt").read_text() == "edited on the GPU\n"
        assert (nb / "data.csv").read_text() == "a,b\n1,2\n"
        assert outside.read_text() == "outside the notebook's directory\n"
        assert not Path(seen["cwd"]).exists(), "the burst kernel's directory goes with it"
        assert sync_bucket.keys() == [], "nothing is left under the prefix after the files came back"
        everything = start_line + released
        assert sync_bucket.gateway.secret_access_key not in everything and "X-Amz-" not in everything
        leftovers = [p.name for p in nb.rglob(".mlp-sync-*")]
        assert leftovers == [], leftovers
    finally:
        k.kc.stop_channels()
        if await k.km.is_alive():
            await k.km.shutdown_kernel(now=False)
    left_here = sorted(os.listdir(nb))
    expected = [".env", ".ipynb_checkpoints", "big.bin", "data.csv", "escape.txt", "notes (from GPU).txt",
                "notes.txt", "out", "patients.phi.csv"]  # fmt: skip
    assert left_here == expected, left_here


async def test_an_unreachable_bucket_is_said_and_the_kernel_still_runs(
    tmp_path: Path,
    runtime_dir: Path,  # noqa: F811  (the fixture imported above)
    sync_bucket: SyncBucket,
) -> None:
    nb = tmp_path / "nb"
    nb.mkdir()
    (nb / "data.csv").write_text("a\n1\n")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{s.getsockname()[1]}"
    data = yaml.safe_load(policy(sync_bucket))
    data["workspace_sync"]["storage"]["endpoint"] = down
    k = await start_in(tmp_path, nb, runtime_dir, yaml.safe_dump(data))
    try:
        reply, outputs = await k.run("import os\nos.listdir('.')", timeout=180)
        text = text_of(outputs)
        assert reply["content"]["status"] == "ok", text
        said = (
            "The notebook's files were not copied to the GPU kernel: Cannot reach the workspace sync bucket"
        )
        assert f"{said} {sync_bucket.bucket} at {down}" in text, text
        assert "[]" in text, "the kernel runs, in its empty directory"
        files = k.status_file()["files"]
        assert (
            files["mode"] == "none" and "the copy through the bucket failed: Cannot reach" in files["message"]
        )
        reply, outputs = await k.run("open('made-on-gpu.txt', 'w').write('x')")
        assert reply["content"]["status"] == "ok", text_of(outputs)
        reply, outputs = await k.run("%gpu release", timeout=120)
        released = text_of(outputs)
        assert reply["content"]["status"] == "ok" and "GPU released" in released, released
        assert "came back" not in released and not (nb / "made-on-gpu.txt").exists()
    finally:
        k.kc.stop_channels()
        if await k.km.is_alive():
            await k.km.shutdown_kernel(now=False)
