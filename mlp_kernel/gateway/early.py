"""Answer ``kernel_info`` while the rest of the gateway is still being imported.

A client considers a kernel ready when it answers ``kernel_info`` (and iopub shows it is connected). Importing
asyncio and the gateway takes about as long as everything else in start-up, so the entry point does it in a
thread while this loop, on plain zmq sockets, answers ``kernel_info`` requests and welcomes iopub subscribers.
Any other message is kept, in order, and handed to the gateway when it takes over the sockets. The GIL is
released while polling, so the import thread runs at nearly full speed.
"""

from __future__ import annotations

import threading
from typing import Any

import zmq

from . import replies
from .wire import Message, Session, Signer


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
                msg = Message(raw)
                is_info = msg.msg_type == "kernel_info_request" and signer.verify(msg.frames) and not kept
            except ValueError:
                is_info = False
            if not is_info:
                kept.append((name, raw))  # order matters: once anything is kept, everything is
                continue
            publish("status", {"execution_state": "busy"}, msg.header)
            reply = session.serialize(
                "kernel_info_reply", replies.kernel_info(), msg.header, idents=msg.idents
            )
            sock.send_multipart(reply)
            publish("status", {"execution_state": "idle"}, msg.header)
    return kept
