"""Agent requests without the agent's source, where the kernel holds it compiled (issue 18 §3).

The restore after a warm-pool claim is on the first cell's path, and sending the agent's 34 KB source cost
the kernel ~10 ms even with its code cached. ``compiled=True`` code names the cached code by digest; a kernel
without it is left as it was and says so (``AGENT_MISSING``), and ``CarryOver`` then sends the whole program.
Real kernels throughout; the link is the carry-over's view of the relay (``execute_silently``), recording the
code it sends so the tests can tell which program went.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from mlp_kernel.gateway.carryover import CarryOver
from mlp_kernel.placement import parse_policy
from mlp_kernel.placement.types import GpuRequest
from mlp_kernel.snapshot import SnapshotError, parse_report, restore_code, snapshot_code, user_expressions
from mlp_kernel.snapshot.codegen import agent_source, prime_code

from .conftest import ROOT_POLICY, Kernel, KernelFactory, Reply


class RecordingLink:
    """What ``CarryOver`` uses of the relay link, over jupyter_client; ``remote.handle`` as the backend
    gave it (``agent_primed``: it ran ``prime_code`` before its claim); ``sent``: each request's code."""

    def __init__(self, kernel: Kernel, primed: bool) -> None:
        self.kernel = kernel
        self.remote = SimpleNamespace(handle={"agent_primed": True} if primed else {})
        self.sent: list[str] = []

    async def execute_silently(self, code: str, timeout: float = 60.0, **extra: Any) -> Reply:
        self.sent.append(code)
        return await self.kernel.silent(code, extra.get("user_expressions") or {}, timeout=timeout)


def is_compiled(code: str) -> bool:
    return agent_source() not in code and len(code) < 2_000


def carry_over(tmp_path: Path) -> CarryOver:
    data = yaml.safe_load(ROOT_POLICY.read_text())
    data["snapshot"] = {"storage": {"kind": "local", "path": str(tmp_path / "snapshots")}}
    carry = CarryOver(parse_policy(data), "k-compiled", "alice")
    assert carry.enabled, "the root policy keeps variables"
    return carry


async def test_compiled_code_runs_the_cached_agent_and_a_kernel_without_it_is_left_as_it_was(
    kernels: KernelFactory, tmp_path: Path
) -> None:
    kernel = await kernels()
    await kernel.run("x = 41\n")
    path = str(tmp_path / "s")
    code = snapshot_code(path, user="alice", max_bytes=None, compiled=True)
    assert is_compiled(code), "compiled code must not carry the agent's source"

    before = await kernel.names()
    reply = await kernel.silent(code, user_expressions())
    assert reply.content["status"] == "ok", reply.content.get("traceback")
    with pytest.raises(SnapshotError) as missing:
        parse_report(reply.content["user_expressions"])
    assert missing.value.agent_missing, missing.value
    assert not (tmp_path / "s").exists(), "a kernel without the agent must not write anything"
    assert await kernel.names() == before

    await kernel.silent(prime_code(), {})
    saved = parse_report((await kernel.silent(code, user_expressions())).content["user_expressions"])
    assert saved.ok and saved.saved == ["x"], saved
    await kernel.run("x = 0\n")
    reply = await kernel.silent(restore_code(path, user="alice", compiled=True), user_expressions())
    restored = parse_report(reply.content["user_expressions"])
    assert restored.ok and restored.saved == ["x"], restored
    assert await kernel.value("x") == 41


async def test_carry_over_sends_the_source_only_to_a_kernel_without_the_compiled_agent(
    kernels: KernelFactory, tmp_path: Path
) -> None:
    """A primed pool kernel gets the restore without source; a kernel that says it is primed but is not
    (another version primed it, under another digest) gets the whole program after the miss, and the kernel
    that ran an agent request gets no source from then on."""
    carry = carry_over(tmp_path)
    request = GpuRequest(gpu_count=1)
    first = await kernels()
    await first.run("x = 41\n")
    cold = RecordingLink(first, primed=False)
    ok, line = await carry.save(cold, request, public=False)  # type: ignore[arg-type]
    assert ok, line
    assert not is_compiled(cold.sent[-1]), "a kernel never sent the agent gets its source"
    ok, line = await carry.save(cold, request, public=False)  # type: ignore[arg-type]
    assert ok and is_compiled(cold.sent[-1]), "the kernel that ran the agent holds it compiled"

    claimed = await kernels()  # said primed, not primed: the miss costs one request, the restore happens
    liar = RecordingLink(claimed, primed=True)
    note = await carry.restore(liar, request, public=False)  # type: ignore[arg-type]
    assert note.startswith("Restored 1 variable"), note
    assert [is_compiled(c) for c in liar.sent] == [True, False]
    assert await claimed.value("x") == 41

    pool = await kernels()
    await pool.silent(prime_code(), {})
    primed = RecordingLink(pool, primed=True)
    note = await carry.restore(primed, request, public=False)  # type: ignore[arg-type]
    assert note.startswith("Restored 1 variable"), note
    assert [is_compiled(c) for c in primed.sent] == [True]
    assert await pool.value("x") == 41
    assert carry.restore_timing is not None and carry.restore_timing[1] >= 0.0
