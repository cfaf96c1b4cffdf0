"""The remote session's timers, and the spend they count, on a manual clock: a real gateway (in this process,
real sockets, the real local backend starting a real ipykernel) whose idle timer runs on
``mlp_kernel.clock.ManualClock``.

Why: on real time an idle test can only say "released some time after the limit" and waits the limit out;
here time moves when the test says, so it can say "kept one second before the limit, released at it, and the
limit counts from the last activity", with a 10-minute timeout, in seconds of wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.connect import write_connection_file

from mlp_kernel.clock import ManualClock
from mlp_kernel.gateway.__main__ import make_backend
from mlp_kernel.gateway.config import GatewayConfig
from mlp_kernel.gateway.kernel import GatewayKernel
from mlp_kernel.gateway.requests import RequestState
from mlp_kernel.gateway.sockets import bind
from mlp_kernel.protocol import KernelState

IDLE_S = 600.0
PRICE = 3.60  # per GPU-hour: a minute costs $0.06
SHIPPED_POLICY = Path(__file__).resolve().parents[2] / "kernelspecs" / "gpu-auto" / "policy.yaml"


@dataclass
class InProcess:
    kernel: GatewayKernel
    client: AsyncKernelClient
    clock: ManualClock

    async def run(self, code: str) -> dict[str, Any]:
        reply = await self.client.execute_interactive(code, timeout=90)
        assert reply["content"]["status"] == "ok", reply["content"]
        await self.settled()
        return dict(reply)

    async def run_out(self, code: str) -> tuple[dict[str, Any], str]:
        """Run ``code``; return the reply and the text of its streams."""
        texts: list[str] = []

        def keep(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                texts.append(msg["content"]["text"])

        reply = await self.client.execute_interactive(code, timeout=90, output_hook=keep)
        await self.settled()
        return dict(reply), "".join(texts)

    async def settled(self) -> None:
        """The I/O thread books relayed requests and replies in batches a moment later: let that happen at
        the clock's present, before the test moves time."""
        await self.kernel.pump.flush()

    async def state_becomes(self, state: KernelState, timeout: float = 30.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.kernel.status.state == state:
                return True
            await asyncio.sleep(0.05)
        return False


@pytest.fixture
async def gateway(tmp_path: Path, runtime_dir: Path) -> AsyncIterator[InProcess]:
    fname, connection = write_connection_file(str(tmp_path / "kernel-clock.json"), ip="127.0.0.1", key=b"k3y")
    policy = SHIPPED_POLICY.read_text().replace("price_per_gpu_hour: 0\n", f"price_per_gpu_hour: {PRICE}\n")
    assert f"price_per_gpu_hour: {PRICE}" in policy
    (tmp_path / "policy.yaml").write_text(policy)
    config = GatewayConfig(
        policy=str(tmp_path / "policy.yaml"),
        kernel_id="clock",
        backend="local",
        idle_timeout=f"{int(IDLE_S)}s",
        status_path=str(tmp_path / "status.json"),
        record_path=str(tmp_path / "record.json"),
        user="alice",
    )
    requests = RequestState(config)
    bound = bind(dict(connection))
    clock = ManualClock()
    kernel = GatewayKernel(
        dict(connection), requests, make_backend(requests, tmp_path), bound, [], fname, clock=clock
    )
    task = asyncio.ensure_future(kernel.run())
    client = AsyncKernelClient()
    client.load_connection_info(dict(connection))
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=30)
        yield InProcess(kernel, client, clock)
    finally:
        client.stop_channels()
        await kernel.shutdown("test over")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)
        bound.context.destroy(linger=0)


async def test_idle_release_happens_at_the_limit_counted_from_the_last_activity(gateway: InProcess) -> None:
    g = gateway
    await g.run("x = 1")
    assert g.kernel.status.state == KernelState.RUNNING
    since = g.kernel.status.since
    assert since is not None
    assert g.kernel.status.idle_limit() == IDLE_S

    await g.clock.advance(IDLE_S - 60)
    await g.run("x += 1")  # activity: the limit counts again from here
    await g.clock.advance(IDLE_S - 1)
    await asyncio.sleep(0.5)  # real time for a release that must not come
    assert g.kernel.status.state == KernelState.RUNNING, "released before the idle limit"

    await g.clock.advance(6)  # past the limit by less than one tick of the idle loop
    assert await g.state_becomes(KernelState.RELEASED), g.kernel.status.message
    last = g.kernel.status.last_release
    assert last is not None and last["reason"] == "idle" and last["idle_s"] == IDLE_S
    # held ~19 min at $3.60/h (the idle loop ticks every 5 s): the kernel's cost, kept in the notebook's total
    spent = re.search(
        r"held 19 min on local/local, \$(\d+\.\d\d); \$(\d+\.\d\d) in this notebook", last["message"]
    )
    assert spent, last["message"]
    assert spent[1] == spent[2] and abs(float(spent[1]) - (g.clock.now - since) / 3600 * PRICE) < 0.006
    total = g.kernel.status.cost_so_far()
    assert abs(total - float(spent[1])) < 0.006 and total > 1.1
    assert g.kernel.remote.link is None

    reply = await g.run("assert x == 2, x")  # a new kernel, with the variable carried over
    assert reply["content"]["status"] == "ok"
    assert g.kernel.status.state == KernelState.RUNNING
    await g.clock.advance(300)
    after = g.kernel.status.snapshot()["cost_so_far"]
    assert abs(after - (total + 0.30)) < 0.006, after  # the total goes on: + 5 min at $3.60/h
    reply, out = await g.run_out("%gpu release")
    assert f"held 5 min on local/local, $0.30; ${after:.2f} in this notebook" in out, out
    assert g.kernel.status.cost_so_far() == after, "a release the user asked for keeps the spend too"


async def test_a_running_cell_is_never_idle(gateway: InProcess) -> None:
    g = gateway
    await g.run("import threading; gate = threading.Event()")
    g.client.execute("gate.wait(60)")  # a long cell: in flight while the clock passes the limit
    await asyncio.sleep(0.5)
    await g.settled()
    await g.clock.advance(IDLE_S * 3)
    await asyncio.sleep(0.5)
    assert g.kernel.status.state == KernelState.RUNNING, "a kernel running a cell was released"
    assert g.kernel.remote.inflight, "the long cell is in flight"
