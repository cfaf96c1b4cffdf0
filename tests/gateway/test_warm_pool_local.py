"""The local backend's warm pool (issue 18 §3) with real ipykernels and the real GPU ledger.

A claim hands a pre-started kernel to exactly one launch, rekeyed to the user's key (a client with the
user's connection runs code on it, one with the pool's key is refused), in the launch's working directory;
the pool refills in the background; a user's launch that does not fit ends pool kernels instead of queueing;
an unclaimed pool kernel ends itself after the pool's idle limit.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import BlockingKernelClient

from mlp_kernel.backends.base import FilesMode, LaunchSpec, Phase, RemoteKernel
from mlp_kernel.backends.local import LocalBackend
from mlp_kernel.backends.local_pool import LocalPool, PoolSpec
from mlp_kernel.backends.local_queue import LocalQuota
from mlp_kernel.placement import Action, Decision, GpuRequest
from mlp_kernel.snapshot.codegen import agent_digest

from .test_lifecycle import wait_until

POOL = PoolSpec(size=1, gpus=1, idle_s=120.0)


def spec(kernel_id: str, gpus: int = 1) -> LaunchSpec:
    d = Decision(Action.RUN, member="private", flavor="bronze", gpu_model="RTX", gpu_count=gpus)
    return LaunchSpec(kernel_id, secrets.token_hex(32), "hmac-sha256", d, GpuRequest(gpu_count=gpus))


def backend(runtime: Path, capacity: int = 2) -> LocalBackend:
    return LocalBackend(
        runtime_dir=runtime, quota=LocalQuota(runtime), capacity=lambda f: capacity, pool=lambda f: POOL
    )


async def connected(b: LocalBackend, s: LaunchSpec) -> tuple[RemoteKernel, str]:
    async for ev in b.launch(s):
        if ev.phase is Phase.CONNECTED:
            assert ev.remote is not None
            return ev.remote, ev.message
    raise AssertionError("no connected event")


def run(remote: RemoteKernel, key: str, code: str, timeout: float = 20) -> dict[str, Any]:
    c = BlockingKernelClient()
    c.load_connection_info(
        {
            "transport": remote.transport,
            "ip": remote.ip,
            "key": key,
            "signature_scheme": "hmac-sha256",
            **{
                f"{ch}_port": getattr(remote, f"{ch}_port")
                for ch in ("shell", "iopub", "stdin", "control", "hb")
            },
        }  # fmt: skip
    )
    c.start_channels()
    out: list[str] = []
    try:
        reply = c.execute_interactive(
            code, timeout=timeout, output_hook=lambda m: out.append(m["content"].get("text", ""))
        )
        return {"status": reply["content"]["status"], "out": "".join(out)}
    finally:
        c.stop_channels()


def pool_entries(runtime: Path) -> list[dict[str, Any]]:
    return [e for e in LocalQuota(runtime).pool_kernels("bronze")]


@pytest.fixture
def runtime(tmp_path):
    yield tmp_path
    for e in pool_entries(tmp_path):  # pool kernels are detached: end what a test left
        if e.get("ready"):
            os.kill(int(e["pid"]), 9)


async def test_a_launch_claims_the_ready_pool_kernel_with_the_users_key_and_the_pool_refills(
    runtime, tmp_path_factory, monkeypatch
):
    workdir = tmp_path_factory.mktemp("notebook-dir")
    monkeypatch.chdir(workdir)
    b = backend(runtime)
    assert await b._pool.refill("bronze", POOL, 2, {}) == 1  # type: ignore[union-attr]
    (pool_kernel,) = pool_entries(runtime)
    assert pool_kernel["ready"] and LocalQuota(runtime).usage()["bronze"].held_gpus == 0, "placement: free"

    s = spec("user-1")
    t0 = time.perf_counter()
    remote, message = await connected(b, s)
    claim_s = time.perf_counter() - t0
    assert message.startswith("Claimed warm-pool kernel"), message
    assert remote.handle["pid"] == pool_kernel["pid"], "the pre-started process, not a new one"
    assert claim_s < 5, claim_s
    got = run(remote, s.key, "import os; print(os.getcwd(), os.environ['MLP_FLAVOR'])")
    assert got == {"status": "ok", "out": f"{workdir} bronze\n"}, got
    assert (remote.files.mode, remote.files.working_dir) == (FilesMode.LOCAL, str(workdir)), (
        "the claim says where the kernel works, as a started kernel's does: the gateway need not ask it"
    )
    got = run(remote, s.key, "import sys; print(*sorted(getattr(sys, '_mlp_agent_code', {})))")
    assert agent_digest("agent.py") in got["out"].split(), f"the snapshot agent was not compiled ahead: {got}"
    marker = workdir / "ran-with-the-pool-key"
    with pytest.raises((ValueError, RuntimeError, TimeoutError)):  # the pool's key is refused now
        run(remote, pool_kernel["connection"]["key"], f"open({str(marker)!r}, 'w')", timeout=3)
    assert not marker.exists(), "a request signed with the pool's key ran"
    held = LocalQuota(runtime).usage()["bronze"].held_gpus
    assert held == 1, "the claimed kernel is the user's now"

    assert await wait_until(lambda: any(e.get("ready") for e in pool_entries(runtime)), 60), "no refill"
    (refill,) = pool_entries(runtime)
    assert refill["pid"] != pool_kernel["pid"]

    await b.release(remote)
    assert await wait_until(lambda: not os.path.exists(f"/proc/{remote.handle['pid']}"), 10)
    assert LocalQuota(runtime).usage()["bronze"].held_gpus == 0


async def test_two_gateways_racing_for_one_pool_kernel_exactly_one_gets_it(runtime):
    await LocalPool(LocalQuota(runtime), os.sys.executable, runtime, []).refill("bronze", POOL, 2, {})
    barrier = threading.Barrier(8)
    results: list[Any] = []

    def claim(i: int) -> None:
        q = LocalQuota(runtime)
        barrier.wait()
        results.append(q.claim_pool(f"gw-{i}", "bronze", 1))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and len(results) == 8
    os.kill(int(winners[0]["pid"]), 9)


async def test_a_user_launch_that_does_not_fit_ends_pool_kernels_instead_of_queueing(runtime):
    b = backend(runtime, capacity=1)
    assert await b._pool.refill("bronze", POOL, 1, {}) == 1  # type: ignore[union-attr]
    (pool_kernel,) = pool_entries(runtime)
    s = spec("big", gpus=1)
    s = LaunchSpec("big", s.key, s.signature_scheme, Decision(Action.RUN, member="private", flavor="bronze",
                   gpu_count=1), s.request)  # fmt: skip
    b.pool_spec = lambda f: PoolSpec(1, 2, 120.0)  # pool kernels of 2 GPUs: this 1-GPU launch cannot claim
    remote, message = await asyncio.wait_for(connected(b, s), 60)
    assert message.startswith("Kernel process"), message
    assert await wait_until(lambda: not os.path.exists(f"/proc/{pool_kernel['pid']}"), 10)
    await b.release(remote)


async def test_an_unclaimed_pool_kernel_ends_itself_after_the_idle_limit(runtime):
    pool = LocalPool(LocalQuota(runtime), os.sys.executable, runtime, [])
    assert await pool.refill("bronze", PoolSpec(1, 1, 2.0), 2, {}) == 1
    (e,) = pool_entries(runtime)
    assert await wait_until(lambda: not os.path.exists(f"/proc/{e['pid']}"), 20)
    assert pool_entries(runtime) == []
    assert not json.loads((runtime / "mlp-kernel-local-gpus.json").read_text())["held"]
