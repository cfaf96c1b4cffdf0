"""How clients reach the gateway: CurveZMQ when jupyter_client asks for it, and requests sent at once."""

from __future__ import annotations

import asyncio
import json

import pytest
import zmq
import zmq.asyncio
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.session import Session

from .conftest import make_kernelspec, text_of


@pytest.fixture
async def curve_kernel(tmp_path, runtime_dir):
    make_kernelspec(tmp_path, "gpu-auto-curve")
    ksm = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])
    km = AsyncKernelManager(
        kernel_name="gpu-auto-curve", transport_encryption="required", kernel_spec_manager=ksm
    )
    await km.start_kernel()
    yield km
    await km.shutdown_kernel(now=True)


async def test_encrypted_transport_end_to_end(curve_kernel):
    info = json.loads(open(curve_kernel.connection_file).read())
    assert info.get("curve_secretkey"), "jupyter_client must have chosen CurveZMQ for this kernelspec"
    kc = curve_kernel.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    outputs: list = []
    reply = await kc.execute_interactive("print(6 * 7)", output_hook=outputs.append, timeout=90)
    assert reply["content"]["status"] == "ok" and "42" in text_of(outputs)
    kc.stop_channels()


async def test_a_client_without_the_curve_key_gets_nothing(curve_kernel):
    info = json.loads(open(curve_kernel.connection_file).read())
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(f"tcp://{info['ip']}:{info['shell_port']}")
    session = Session(key=info["key"].encode())
    session.send(sock, "kernel_info_request", {})
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(sock.recv_multipart(), 3)
    ctx.destroy(linger=0)


async def test_requests_sent_the_moment_the_kernel_starts_are_all_answered(start_kernel):
    """Messages arriving while the gateway is still importing are kept, in order, and handled after."""
    k = await start_kernel()
    k.kc.stop_channels()
    await k.km.restart_kernel(now=True)  # a fresh gateway; send before waiting for anything
    kc = k.km.client()
    kc.start_channels()
    first = kc.execute("a = 1")
    second = kc.execute("a + 1")
    replies = {}
    while len(replies) < 2:
        msg = await kc.get_shell_msg(timeout=90)
        replies[msg["parent_header"]["msg_id"]] = msg
    assert replies[first]["content"]["status"] == "ok" and replies[second]["content"]["status"] == "ok"
    assert replies[second]["content"]["execution_count"] > replies[first]["content"]["execution_count"]
    kc.stop_channels()
