"""The remote kernel's output through libzmq's proxy (``gateway/forwarder.py``), end to end: a real gateway,
a real ipykernel behind it, a real client. Output of a running kernel goes through the proxy's thread, in
order and complete, and the cells the gateway must screen (the first one, which starts the kernel, and a
``%gpu`` cell, whose ``busy`` the gateway announced itself) still show one ``busy`` and one ``idle`` each."""

from __future__ import annotations

from pathlib import Path

from .conftest import text_of
from .test_lifecycle import wait_until

LINES = 3000
CELL = f"import sys\nfor i in range({LINES}):\n    print(i)\n    sys.stdout.flush() if i % 7 == 0 else None\n"


def threads(pid: int) -> set[str]:
    return {(t / "comm").read_text().strip() for t in Path(f"/proc/{pid}/task").iterdir()}


def statuses(outputs: list[dict]) -> list[str]:
    return [m["content"]["execution_state"] for m in outputs if m["msg_type"] == "status"]


async def test_a_running_kernels_output_goes_through_the_proxy_in_order(start_kernel):
    k = await start_kernel()
    reply, outputs = await k.run("1")  # starts the GPU kernel: the gateway screens its output meanwhile
    assert reply["content"]["status"] == "ok" and statuses(outputs) == ["busy", "idle"], outputs
    reply, outputs = await k.run(CELL)
    assert reply["content"]["status"] == "ok"
    assert text_of(outputs).split() == [str(i) for i in range(LINES)]  # complete, in order
    assert statuses(outputs) == ["busy", "idle"]
    # the proxy's thread runs (it stops for a moment whenever the gateway publishes, e.g. its status)
    assert await wait_until(lambda: "mlp-iopub" in threads(k.gateway_pid), 5), threads(k.gateway_pid)
    reply, outputs = await k.run("%gpu idle=30d\nprint('after the magic')")  # screened again, then the proxy
    assert reply["content"]["status"] == "ok" and "after the magic" in text_of(outputs), outputs
    assert statuses(outputs) == ["busy", "idle"], outputs
    reply, outputs = await k.run(CELL)
    assert text_of(outputs).split() == [str(i) for i in range(LINES)]
    assert statuses(outputs) == ["busy", "idle"]
