"""The relay speaks CurveZMQ to a remote kernel that publishes a server key (Kubernetes, curve=true)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
import zmq

from mlp_kernel.backends.base import RemoteKernel
from mlp_kernel.gateway.pump import Pump
from mlp_kernel.gateway.relay import RemoteLink
from mlp_kernel.gateway.wire import Session, Signer
from tests.ports import free_port


@pytest.fixture
def curve_kernel(tmp_path):
    public, secret = zmq.curve_keypair()
    ports = {c: free_port("127.0.0.1") for c in ("shell", "iopub", "stdin", "control", "hb")}
    info = {f"{c}_port": p for c, p in ports.items()}
    info.update(ip="127.0.0.1", transport="tcp", key="k3y", signature_scheme="hmac-sha256",
                curve_publickey=public.decode(), curve_secretkey=secret.decode())  # fmt: skip
    path = tmp_path / "kernel.json"
    path.write_text(json.dumps(info))
    proc = subprocess.Popen([sys.executable, "-m", "ipykernel_launcher", "-f", str(path)])
    remote = RemoteKernel(kernel_id="curve", ip="127.0.0.1", shell_port=ports["shell"],
                          iopub_port=ports["iopub"], stdin_port=ports["stdin"], control_port=ports["control"],
                          hb_port=ports["hb"], handle={"curve_publickey": public.decode()})  # fmt: skip
    yield remote
    proc.kill()
    proc.wait()


class Linked:
    """A RemoteLink through a running Pump (the gateway's I/O thread) with unconnected client sockets."""

    def __init__(self, remote: RemoteKernel) -> None:
        self.ctx: zmq.Context = zmq.Context()
        client = {name: self.ctx.socket(zmq.ROUTER if name != "iopub" else zmq.XPUB) for name in
                  ("shell", "control", "stdin", "iopub")}  # fmt: skip
        self.pump = Pump(self.ctx, client)
        self.pump.start()
        self.serving = asyncio.ensure_future(self.pump.serve(lambda channel, frames: None))
        self.link = RemoteLink(self.pump, remote, Session(Signer("k3y")))

    async def close(self) -> None:
        await self.link.close()
        self.serving.cancel()
        await asyncio.gather(self.serving, return_exceptions=True)
        self.pump.stop()  # the I/O thread closes the sockets it owns
        self.ctx.term()


async def test_relay_encrypts_to_a_curve_kernel(curve_kernel):
    linked = Linked(curve_kernel)
    try:
        reply = await linked.link.execute_silently("x = 6 * 7", timeout=60)
        assert reply.content["status"] == "ok"
    finally:
        await linked.close()


async def test_without_the_server_key_the_kernel_does_not_answer(curve_kernel):
    plain = RemoteKernel(**{**curve_kernel.__dict__, "handle": {}})
    linked = Linked(plain)
    try:
        await asyncio.sleep(3)  # let the kernel start, so silence means refusal, not a slow start
        with pytest.raises(asyncio.TimeoutError):
            await linked.link.execute_silently("x = 1", timeout=5)
    finally:
        await linked.close()
