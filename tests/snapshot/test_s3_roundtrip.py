"""A namespace goes to a real S3 endpoint and back into a fresh kernel, with only the stdlib in the kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlp_kernel.snapshot import SnapshotError
from tests.ci import require_module

from .conftest import KernelFactory, S3Server, shutdown
from .s3_helpers import bucket_store, s3_restore, s3_snapshot

NAMESPACE = """
import numpy as np
import pandas as pd
import os.path as osp
arr = np.arange(200_000, dtype=np.float64).reshape(400, 500)
frame = pd.DataFrame({"a": range(1000), "b": [str(i) for i in range(1000)]})
objs = np.array([1, "two", None], dtype=object)
config = {"lr": 0.01, "tags": ("x", "y"), "nested": [1, 2, {"k": b"bytes"}]}
scale = 3
def scaled(v):
    return v * scale
class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y
    def norm2(self):
        return self.x ** 2 + self.y ** 2
p = Point(3, 4)
handle = open(os.devnull if False else "/dev/null")
"""


async def test_a_namespace_round_trips_through_the_bucket(
    kernels: KernelFactory, s3_server: S3Server, credentials_dir: Path
) -> None:
    bucket = s3_server.new_bucket()
    snaps = bucket_store(s3_server, bucket, credentials_dir)
    first = await kernels()
    await first.run(NAMESPACE)
    report, _ = await s3_snapshot(first, snaps)
    assert set(report.saved) >= {
        "np",
        "pd",
        "osp",
        "arr",
        "frame",
        "objs",
        "config",
        "scale",
        "scaled",
        "Point",
        "p",
    }
    assert report.skipped == {"handle": "open file"}
    assert report.bytes > arr_bytes()
    keys = s3_server.keys(bucket)
    assert "snaps/alice/k1/manifest.json" in keys
    assert all(k.startswith("snaps/alice/k1/") for k in keys)
    await shutdown(first)

    second = await kernels()
    restored = await s3_restore(second, snaps)
    assert set(restored.saved) == set(report.saved)
    assert restored.skipped == {"handle": "not saved: open file"}
    assert await second.value("float(arr.sum()) == float(np.arange(200_000).sum())") is True
    assert await second.value("frame.shape == (1000, 2) and frame.b[999] == '999'") is True
    assert await second.value("objs.tolist()") == [1, "two", None]
    assert await second.value("config['nested'][2]['k'] == b'bytes'") is True
    await second.run("scale = 10")
    assert await second.value("scaled(2)") == 20, "a restored function sees the live namespace"
    assert await second.value("isinstance(p, Point) and p.norm2()") == 25
    assert await second.value("osp.join('a', 'b')") == "a/b"


def arr_bytes() -> int:
    return 400 * 500 * 8


async def test_the_pod_keeps_no_temporary_files(
    kernels: KernelFactory, s3_server: S3Server, credentials_dir: Path, tmp_path: Path
) -> None:
    tmp = tmp_path / "pod-tmp"
    tmp.mkdir()
    snaps = bucket_store(s3_server, s3_server.new_bucket(), credentials_dir)
    kernel = await kernels(env={"TMPDIR": str(tmp)})
    await kernel.run("import numpy as np\nbig = np.ones(1_000_000)\nsmall = [1, 2, 3]")
    await s3_snapshot(kernel, snaps)
    fresh = await kernels(env={"TMPDIR": str(tmp)})
    await s3_restore(fresh, snaps)
    assert await fresh.value("float(big.sum()) + sum(small)") == 1_000_006.0
    assert list(tmp.iterdir()) == [], "each file is deleted once uploaded or loaded"


async def test_the_size_cap_keeps_small_variables_and_names_the_rest(
    kernels: KernelFactory, s3_server: S3Server, credentials_dir: Path
) -> None:
    bucket = s3_server.new_bucket()
    snaps = bucket_store(s3_server, bucket, credentials_dir)
    kernel = await kernels()
    await kernel.run("import numpy as np\nbig = np.zeros(2_000_000)\nsmall = list(range(100))\nname = 'x'")
    report, _ = await s3_snapshot(kernel, snaps, max_bytes=1_000_000)
    assert report.skipped == {"big": "over the size cap"}
    assert {"small", "name", "np"} <= set(report.saved)
    assert report.bytes <= 1_000_000
    upload = snaps.prepare_upload(1_000_000)
    assert upload["max_file_bytes"] == 1_000_000


async def test_a_new_snapshot_replaces_the_previous_one(
    kernels: KernelFactory, s3_server: S3Server, credentials_dir: Path
) -> None:
    bucket = s3_server.new_bucket()
    snaps = bucket_store(s3_server, bucket, credentials_dir)
    kernel = await kernels()
    await kernel.run("a = 1\nb = 2")
    await s3_snapshot(kernel, snaps)
    first_keys = set(s3_server.keys(bucket))
    await kernel.run("del b\nc = 3")
    await s3_snapshot(kernel, snaps)
    second_keys = set(s3_server.keys(bucket))
    assert not (first_keys - {"snaps/alice/k1/manifest.json"}) & second_keys, "old data files are gone"
    fresh = await kernels()
    report = await s3_restore(fresh, snaps)
    assert sorted(report.saved) == ["a", "c"]


async def test_forget_empties_the_prefix_and_nothing_is_restorable(
    kernels: KernelFactory, s3_server: S3Server, credentials_dir: Path
) -> None:
    bucket = s3_server.new_bucket()
    snaps = bucket_store(s3_server, bucket, credentials_dir)
    kernel = await kernels()
    await kernel.run("x = list(range(10))")
    await s3_snapshot(kernel, snaps)
    assert snaps.exists()
    snaps.clear()
    assert s3_server.keys(bucket) == []
    assert not snaps.exists()
    assert snaps.restore_plan() is None


async def test_a_data_file_missing_from_the_bucket_is_named(
    kernels: KernelFactory, s3_server: S3Server, credentials_dir: Path
) -> None:
    bucket = s3_server.new_bucket()
    snaps = bucket_store(s3_server, bucket, credentials_dir)
    kernel = await kernels()
    await kernel.run("keep = 1\nlost = 'gone'")
    await s3_snapshot(kernel, snaps)
    manifest = snaps.read_manifest()
    assert manifest is not None
    lost = next(e for e in manifest["entries"] if e["name"] == "lost")
    s3_server.client().delete_object(Bucket=bucket, Key=f"snaps/alice/k1/{manifest['data']}/{lost['file']}")
    fresh = await kernels()
    report = await s3_restore(fresh, snaps)
    assert report.saved == ["keep"]
    assert "not in the snapshot bucket" in report.skipped["lost"]


async def test_a_failed_upload_leaves_no_manifest(
    kernels: KernelFactory, s3_server: S3Server, credentials_dir: Path
) -> None:
    bucket = s3_server.new_bucket()
    snaps = bucket_store(s3_server, bucket, credentials_dir)
    kernel = await kernels()
    await kernel.run("x = 1")
    upload = snaps.prepare_upload(None)
    s3_server.client().delete_bucket(Bucket=bucket)  # every upload now fails with NoSuchBucket
    from mlp_kernel.snapshot import parse_report, snapshot_s3_code, user_expressions

    reply = await kernel.silent(snapshot_s3_code(upload, user="alice", max_bytes=None), user_expressions())
    with pytest.raises(SnapshotError, match="refused by the snapshot bucket .* NoSuchBucket"):
        parse_report(reply.content["user_expressions"])
    assert await kernel.value("x") == 1, "the kernel keeps running with its namespace"


async def test_a_torch_model_and_its_optimizer_round_trip(
    kernels: KernelFactory, s3_server: S3Server, credentials_dir: Path
) -> None:
    require_module("torch", "torch is not installed (.ci/run installs it unless MLP_SKIP_TORCH=1)")
    snaps = bucket_store(s3_server, s3_server.new_bucket(), credentials_dir)
    kernel = await kernels()
    await kernel.run(
        "import torch\ntorch.manual_seed(0)\nmodel = torch.nn.Linear(8, 2)\n"
        "opt = torch.optim.Adam(model.parameters(), lr=0.1)\n"
        "model(torch.ones(3, 8)).sum().backward(); opt.step()\nw = model.weight.detach().clone()"
    )
    report, _ = await s3_snapshot(kernel, snaps)
    assert {"model", "opt", "w"} <= set(report.saved)
    fresh = await kernels()
    await s3_restore(fresh, snaps)
    assert await fresh.value("bool(torch.equal(model.weight.detach(), w))") is True
    assert await fresh.value("opt.param_groups[0]['params'][0] is model.weight") is True
