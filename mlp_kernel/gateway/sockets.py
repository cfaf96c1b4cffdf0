"""Bind the kernel's five channels before anything else is imported.

A client's first connection attempt fails while nothing listens, and ZeroMQ retries only every 100 ms, so the
moment the gateway binds decides when "kernel ready" happens. This module needs nothing but ``zmq``: the entry
point binds here first (about 40 ms after exec) and only then imports asyncio and the rest of the gateway.
The heartbeat is an echo thread, like ipykernel's, alive even while the event loop is busy.

Socket activation: the provisioner binds TCP listening sockets on the connection file's ports *before* it
starts us and passes them (``MLP_KERNEL_FDS``); ZeroMQ adopts them with ``ZMQ_USE_FD``. A client's first
connect then lands in the listen backlog instead of failing and waiting for ZeroMQ's 100 ms reconnect.
CurveZMQ: when the connection file carries ``curve_secretkey`` (jupyter_client's ``transport_encryption``),
every channel is a Curve server.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import dataclass
from typing import Any

import zmq

CHANNELS = (("shell", zmq.ROUTER), ("control", zmq.ROUTER), ("stdin", zmq.ROUTER), ("iopub", zmq.XPUB))


@dataclass
class BoundSockets:
    context: zmq.Context[Any]
    sockets: dict[str, zmq.Socket[Any]]
    heartbeat: threading.Thread


def _inherited_fds() -> dict[str, int]:
    try:
        return {str(k): int(v) for k, v in json.loads(os.environ.pop("MLP_KERNEL_FDS", "") or "{}").items()}
    except (ValueError, AttributeError):
        return {}


def _prepare(sock: zmq.Socket[Any], fd: int | None, curve_secret: bytes | None) -> None:
    if fd is not None:
        sock.setsockopt(zmq.USE_FD, fd)
    if curve_secret:
        sock.curve_server = True
        sock.curve_secretkey = curve_secret


def _echo(ctx: zmq.Context[Any], addr: str, fd: int | None, curve: bytes | None) -> None:
    sock = ctx.socket(zmq.ROUTER)
    sock.linger = 0
    _prepare(sock, fd, curve)
    sock.bind(addr)
    with contextlib.suppress(zmq.ContextTerminated, zmq.ZMQError):
        zmq.proxy(sock, sock)


def bind(connection: dict[str, Any]) -> BoundSockets:
    url = f"{connection.get('transport', 'tcp')}://{connection['ip']}:"
    ctx: zmq.Context[Any] = zmq.Context()
    fds = _inherited_fds() if connection.get("transport", "tcp") == "tcp" else {}
    secret = connection.get("curve_secretkey")
    curve = secret.encode("ascii") if isinstance(secret, str) else secret
    sockets = {}
    for name, kind in CHANNELS:
        sock = ctx.socket(kind)
        _prepare(sock, fds.get(name), curve)
        sock.linger = 1000
        if kind == zmq.ROUTER:
            sock.router_handover = 1
        if kind == zmq.XPUB:
            sock.xpub_verbose = 1  # every subscriber gets its iopub_welcome, not only the first
        sock.bind(url + str(connection[f"{name}_port"]))
        sockets[name] = sock
    hb_addr = url + str(connection["hb_port"])
    hb = threading.Thread(target=_echo, args=(ctx, hb_addr, fds.get("hb"), curve), daemon=True)
    hb.start()
    return BoundSockets(ctx, sockets, hb)
