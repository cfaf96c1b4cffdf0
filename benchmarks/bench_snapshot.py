"""Snapshot and restore throughput, added first-cell latency and peak extra memory, in real ipykernels.

Why: a release must not stall the notebook for long nor push the kernel over its memory limit (a snapshot
that needs twice the namespace in memory would OOM exactly the kernels that most need saving). This runs the
same generated code the gateway sends, over namespaces of 1 MB, 100 MB and 2 GB (``--quick`` skips 2 GB):

- snapshot: MB/s (bytes written / client-side wall time of the silent request) and peak extra RSS of the
  kernel process above its RSS before the snapshot, sampled every few milliseconds with psutil;
- restore: MB/s in a fresh kernel, peak extra RSS above the RSS once restored (transient buffers);
- first cell after a release: (restore + first cell) minus a first cell in a fresh kernel without restore.

The namespace mixes what notebooks hold: ~60% numpy arrays, ~30% a pandas DataFrame, ~10% plain Python
(a list of strings and a dict of records). Run: ``.venv/bin/python benchmarks/bench_snapshot.py [--quick]``.

``--s3`` stores the snapshots in a bucket instead (``kind: s3``: presigned POST uploads and GET downloads
with the standard library in the kernel), served by the tests' real S3 server (``tests/cluster/minio.py``:
SeaweedFS in MinIO's place, built by ``python -m tests.cluster.build``) on the same machine, so the figures
include the server's own cost on the same CPUs and say little about MinIO or AWS S3 throughput; they show the
agent's overhead and memory. Needs the ``s3`` extra.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
from jupyter_client.manager import AsyncKernelManager

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlp_kernel.snapshot import (  # noqa: E402
    parse_report,
    restore_code,
    restore_s3_code,
    snapshot_code,
    snapshot_s3_code,
    user_expressions,
)

MB = 10**6
SIZES = {"1MB": 1 * MB, "100MB": 100 * MB, "2GB": 2000 * MB}
TIMEOUT = 1800

BUILD = """
import numpy as np, pandas as pd
_total = {total}
_rng = np.random.default_rng(0)
arrays = [_rng.random(max(1, int(_total * 0.6 / 4) // 8)) for _ in range(4)]
frame = pd.DataFrame({{c: _rng.random(max(1, int(_total * 0.3 / 3) // 8)) for c in "abc"}})
_n = max(1, int(_total * 0.08) // 1000)
texts = ["%08d" % i + "x" * 992 for i in range(_n)]
_m = max(1, int(_total * 0.02) // 200)
records = {{i: {{"id": i, "name": "r%d" % i, "score": i * 0.5}} for i in range(_m)}}
checksum = float(sum(a.sum() for a in arrays) + frame.values.sum())
"""
CHECK = "float(sum(a.sum() for a in arrays) + frame.values.sum()) == checksum and len(texts) == _n_texts"


@dataclass
class Result:
    size: str
    namespace_mb: float
    snapshot_mb_written: float
    snapshot_s: float
    snapshot_mb_per_s: float
    snapshot_peak_extra_mb: float
    restore_s: float
    restore_mb_per_s: float
    restore_peak_extra_mb: float
    first_cell_fresh_s: float
    first_cell_after_restore_s: float
    added_first_cell_latency_s: float
    restored_ok: bool


class RssSampler:
    """Samples a process's RSS in a thread; ``peak`` is the highest value seen while running."""

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        return int(self.process.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


class Kernel:
    def __init__(self, manager: AsyncKernelManager, client: Any) -> None:
        self.manager = manager
        self.client = client

    @classmethod
    async def start(cls, cwd: str) -> Kernel:
        manager = AsyncKernelManager(kernel_name="python3")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        await manager.start_kernel(cwd=cwd, env=env)
        client = manager.client()
        client.start_channels()
        await client.wait_for_ready(timeout=120)
        return cls(manager, client)

    @property
    def pid(self) -> int:
        return self.manager.provisioner.process.pid  # type: ignore[union-attr]

    async def execute(
        self, code: str, *, silent: bool = False, user_expressions: dict[str, str] | None = None
    ) -> dict[str, Any]:
        msg_id = self.client.execute(
            code, silent=silent, store_history=not silent, user_expressions=user_expressions or {}
        )
        while True:
            reply = await self.client._async_get_shell_msg(timeout=TIMEOUT)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        if reply["content"]["status"] != "ok":
            raise RuntimeError("\n".join(reply["content"].get("traceback", [])))
        return reply["content"]

    async def value(self, expr: str) -> Any:
        content = await self.execute("", silent=True, user_expressions={"v": expr})
        return ast.literal_eval(content["user_expressions"]["v"]["data"]["text/plain"])

    async def stop(self) -> None:
        self.client.stop_channels()
        await self.manager.shutdown_kernel(now=False)


async def timed(coro: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    value = await coro
    return value, time.perf_counter() - start


class Bucket:
    """``--s3``: the tests' real S3 server (``tests/cluster/minio.py``, SeaweedFS in MinIO's place) on free
    local ports, and the gateway's side of one kernel's snapshot."""

    def __init__(self) -> None:
        import contextlib

        from mlp_kernel.snapshot.s3 import S3Snapshots
        from mlp_kernel.snapshot.s3_config import CredentialSource, S3Settings
        from tests.cluster.minio import s3_server

        self.stack = contextlib.ExitStack()
        store = self.stack.enter_context(s3_server(Path(tempfile.mkdtemp(prefix="bench-s3-"))))
        store.client().create_bucket(Bucket="bench-snapshots")
        env = {"BENCH_KEY_ID": store.root.access_key_id, "BENCH_SECRET": store.root.secret_access_key}
        creds = CredentialSource(access_key_id_env="BENCH_KEY_ID", secret_access_key_env="BENCH_SECRET")
        settings = S3Settings(bucket="bench-snapshots", endpoint=store.endpoint, public=False,
                              credentials=creds, addressing_style="path")  # fmt: skip
        self.snaps = S3Snapshots(settings, user="bench", kernel_id="bench", environ=env)
        self.workdir = store.data_dir.parent

    def snapshot_code(self) -> str:
        return snapshot_s3_code(self.snaps.prepare_upload(None), user="bench", max_bytes=None)

    def restore_code(self) -> str:
        plan = self.snaps.restore_plan()
        if plan is None:
            raise RuntimeError("no snapshot in the bucket")
        return restore_s3_code(plan, user="bench")

    def stop(self) -> None:
        self.stack.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


async def bench_one(label: str, total: int, workdir: Path, bucket: Bucket | None = None) -> Result:
    snap = workdir / f"snap-{label}"
    first = await Kernel.start(str(workdir))
    _, fresh_cell = await timed(first.execute("y = 1"))
    await first.execute(BUILD.format(total=total))
    await first.execute("_n_texts = len(texts)")
    namespace = await first.value(
        "sum(a.nbytes for a in arrays) + int(frame.memory_usage().sum()) + len(texts) * 1000 "
        "+ len(records) * 200"
    )
    if bucket is None:
        code = snapshot_code(str(snap), user="bench", max_bytes=None, exclude=())
    else:
        code = await asyncio.to_thread(bucket.snapshot_code)
    with RssSampler(first.pid) as sampler:
        base = sampler.rss()
        request = first.execute(code, silent=True, user_expressions=user_expressions())
        content, snapshot_s = await timed(request)
    saved = parse_report(content["user_expressions"])
    snapshot_peak = sampler.peak - base
    await first.stop()

    second = await Kernel.start(str(workdir))
    if bucket is None:
        restore = restore_code(str(snap), user="bench")
    else:
        restore = await asyncio.to_thread(bucket.restore_code)
    with RssSampler(second.pid) as sampler:
        request = second.execute(restore, silent=True, user_expressions=user_expressions())
        content, restore_s = await timed(request)
        after = sampler.rss()
    parse_report(content["user_expressions"])
    restore_peak = max(0, sampler.peak - after)
    _, cell_after = await timed(second.execute("y = 1"))
    await second.execute("_n_texts = len(texts)")
    ok = bool(await second.value(CHECK))
    await second.stop()
    shutil.rmtree(snap, ignore_errors=True)
    if bucket is not None:
        await asyncio.to_thread(bucket.snaps.clear)

    written = saved.bytes / MB
    return Result(
        size=label,
        namespace_mb=round(namespace / MB, 1),
        snapshot_mb_written=round(written, 1),
        snapshot_s=round(snapshot_s, 3),
        snapshot_mb_per_s=round(written / snapshot_s, 1),
        snapshot_peak_extra_mb=round(snapshot_peak / MB, 1),
        restore_s=round(restore_s, 3),
        restore_mb_per_s=round(written / restore_s, 1),
        restore_peak_extra_mb=round(restore_peak / MB, 1),
        first_cell_fresh_s=round(fresh_cell, 3),
        first_cell_after_restore_s=round(restore_s + cell_after, 3),
        added_first_cell_latency_s=round(restore_s + cell_after - fresh_cell, 3),
        restored_ok=ok,
    )


def print_table(results: list[Result]) -> None:
    header = (
        "size",
        "written MB",
        "snap s",
        "snap MB/s",
        "snap +RSS MB",
        "restore s",
        "restore MB/s",
        "restore +RSS MB",
        "+1st cell s",
        "ok",
    )
    rows = [
        (
            r.size,
            r.snapshot_mb_written,
            r.snapshot_s,
            r.snapshot_mb_per_s,
            r.snapshot_peak_extra_mb,
            r.restore_s,
            r.restore_mb_per_s,
            r.restore_peak_extra_mb,
            r.added_first_cell_latency_s,
            r.restored_ok,
        )
        for r in results
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths, strict=True)))


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 2 GB namespace")
    parser.add_argument("--dir", type=Path, default=None, help="where to write snapshots (default: temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    parser.add_argument("--s3", action="store_true", help="snapshot to a bucket (a local real S3 server)")
    args = parser.parse_args(argv)
    sizes = {k: v for k, v in SIZES.items() if not (args.quick and k == "2GB")}
    workdir = Path(tempfile.mkdtemp(prefix="bench-snapshot-", dir=args.dir))
    bucket = Bucket() if args.s3 else None
    try:
        results = []
        for label, total in sizes.items():
            results.append(await bench_one(label, total, workdir, bucket))
            print(json.dumps(asdict(results[-1])), flush=True)
        print_table(results)
        if args.json:
            args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
        return 0 if all(r.restored_ok for r in results) else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if bucket is not None:
            bucket.stop()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
