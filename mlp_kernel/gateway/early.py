"""Answer ``kernel_info`` while the rest of the gateway is still being imported.

A client considers a kernel ready when it answers ``kernel_info`` (and iopub shows it is connected). Importing
asyncio and the gateway takes about as long as everything else in start-up, so the entry point does it in a
thread while this loop, on plain zmq sockets, answers ``kernel_info`` requests and welcomes iopub subscribers.
Any other signed message is kept, in order, and handed to the gateway when it takes over the sockets;
frames that are not a signed message are dropped here, their signature checked before any JSON is read (a
header that was not an object once ended the whole process). The GIL is released while polling, so the
import thread runs at nearly full speed.
"""

from __future__ import annotations

import threading
from typing import Any

import zmq

from . import replies
from .wire import DropLog, Malformed, Message, Session, Signer


def _warn(fmt: str, *args: object) -> None:
    """Log as the gateway does (``logging`` is imported here only when needed)."""
    import logging

    logging.getLogger("mlp_kernel.gateway").warning(fmt, *args)


_DROPPED = DropLog(_warn)  # rate-limited like the gateway's


def _dropped(channel: str, exc: Malformed) -> None:
    _DROPPED(channel, "dropping a message on %s: %s", channel, exc)


def serve_until_ready(
    bound: Any, connection: dict[str, Any], done: threading.Event, kernel_id: str
) -> list[tuple[str, list[bytes]]]:
    """Serve until ``done`` is set; return the (channel, frames) the gateway must still handle."""
    signer = Signer(connection.get("key", ""), connection.get("signature_scheme", "hmac-sha256"))
    session = Session(signer)
    socks = bound.sockets
    poller = zmq.Poller()
    for name in ("shell", "control", "iopub"):
        poller.register(socks[name], zmq.POLLIN)
    kept: list[tuple[str, list[bytes]]] = []
    by_socket = {socks[n]: n for n in ("shell", "control", "iopub")}
    topic = f"kernel.{kernel_id}.".encode()

    def publish(msg_type: str, content: dict[str, Any], parent: dict[str, Any] | None) -> None:
        socks["iopub"].send_multipart(
            session.serialize(msg_type, content, parent, idents=[topic + msg_type.encode()])
        )

    while not done.is_set():
        for sock, _ in poller.poll(5):
            name = by_socket[sock]
            if name == "iopub":
                event = sock.recv()
                if event[:1] == b"\x01":
                    publish("iopub_welcome", {"subscription": event[1:].decode(errors="replace")}, None)
                continue
            raw = sock.recv_multipart()
            try:
                msg = Message(raw, signer).complete()  # the signature before anything is parsed
            except Malformed as exc:
                _dropped(name, exc)
                continue
            if msg.msg_type != "kernel_info_request" or kept:
                kept.append((name, raw))  # order matters: once anything is kept, everything is
                continue
            publish("status", {"execution_state": "busy"}, msg.header)
            reply = session.serialize(
                "kernel_info_reply", replies.kernel_info(), msg.header, idents=msg.idents
            )
            sock.send_multipart(reply)
            publish("status", {"execution_state": "idle"}, msg.header)
    return kept
