"""Fixtures: a member behind a real nginx in network namespaces of its own, and the gateway's relay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from jupyter_client.asynchronous import AsyncKernelClient

from mlp_kernel.backends.base import RemoteKernel
from mlp_kernel.gateway.pump import Pump
from mlp_kernel.gateway.relay import RemoteLink
from mlp_kernel.gateway.wire import Session, Signer

from .deploy import KEY, Member, is_root


@pytest.fixture
def member(tmp_path: Path) -> Iterator[Member]:
    if not is_root():
        pytest.fail("the transport tests build network namespaces: run them as root (CI does)")
    m = Member(tmp_path / "member")
    try:
        m.up()
        yield m
    finally:
        m.down()


class Gateway:
    """The gateway's relay (its I/O thread and a RemoteLink) between a Jupyter client and a RemoteKernel.

    The client sockets are bound on loopback and every request takes the relay's fast path, as the gateway's
    do once a remote kernel is connected; a request the pump hands to the loop is sent on by the link.
    """

    def __init__(self, remote: RemoteKernel, tmp: Path) -> None:
        self.ctx: zmq.Context[Any] = zmq.Context()
        client = {name: self.ctx.socket(zmq.ROUTER) for name in ("shell", "control", "stdin")}
        client["iopub"] = self.ctx.socket(zmq.XPUB)
        client["iopub"].xpub_verbose = 1
        info: dict[str, Any] = {"ip": "127.0.0.1", "transport": "tcp", "key": KEY}
        info["signature_scheme"] = "hmac-sha256"
        for name, sock in client.items():
            info[f"{name}_port"] = sock.bind_to_random_port("tcp://127.0.0.1")
        info["hb_port"] = 0
        self.pump = Pump(self.ctx, client, fast_forward=lambda channel, frames: True)
        self.pump.start()
        self.serving = asyncio.ensure_future(self.pump.serve(self._handed))
        self.link = RemoteLink(self.pump, remote, Session(Signer(KEY)))
        self.pump.fast = True
        self.connection_file = tmp / "gateway-connection.json"
        self.connection_file.write_text(json.dumps(info))

    def _handed(self, channel: str, frames: list[bytes]) -> None:
        self.link.send(channel, frames)
        self.pump.done(channel)

    def client(self) -> AsyncKernelClient:
        kc = AsyncKernelClient()
        kc.load_connection_file(str(self.connection_file))
        kc.start_channels(hb=False)
        return kc

    async def close(self) -> None:
        await self.link.close()
        self.serving.cancel()
        await asyncio.gather(self.serving, return_exceptions=True)
        self.pump.stop()
        self.ctx.term()


@pytest.fixture
async def through_ingress(member: Member, tmp_path: Path) -> AsyncIterator[tuple[Member, Any, Gateway]]:
    """(member, tunnel, gateway relay) with a ready client: the whole path, as deployed."""
    tunnel, remote = member.tunnel()
    gateway = Gateway(remote, tmp_path)
    try:
        yield member, tunnel, gateway
    finally:
        await gateway.close()
        tunnel.close()
