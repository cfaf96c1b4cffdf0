"""The relay between the gateway's client-facing sockets and one remote kernel.

Client ROUTER ⇄ DEALER keeps client identities: the DEALER forwards the client's identity frames as the first
frames, the remote ROUTER prepends ours, and on the way back the remote strips ours so the frames we receive
start with the client's identity, which our ROUTER routes on. Shell and stdin DEALERs share one routing id so
``input_request``s (which ipykernel addresses to the shell requester's identity) find their way back.

The hot path (iopub, shell replies) forwards frames untouched; the remote kernel was started with the same
HMAC key. The gateway's own requests to the remote kernel (bootstrap, snapshots) carry no client identity, so
their replies start with the delimiter and are kept here instead of being forwarded; their iopub messages are
filtered only while such a request is in flight, so normal output pays no JSON parsing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import zmq
import zmq.asyncio

from ..backends.base import RemoteKernel
from .wire import DELIM, Message, Session

log = logging.getLogger(__name__)


def _secure(sock: zmq.Socket, server_key: str, client_keys: tuple[bytes, bytes] | None) -> None:
    """CurveZMQ to a remote kernel that published a server key (the Kubernetes backend with ``curve``)."""
    if server_key and client_keys:
        sock.curve_serverkey = server_key.encode("ascii")
        sock.curve_publickey, sock.curve_secretkey = client_keys


class RemoteLink:
    def __init__(
        self,
        ctx: zmq.asyncio.Context,
        remote: RemoteKernel,
        session: Session,
        client: dict[str, zmq.asyncio.Socket],
        on_reply: Callable[[list[bytes]], None],
    ) -> None:
        self.remote = remote
        self.session = session
        self.client = client
        self.on_reply = on_reply
        ident = f"mlp-gw-{uuid.uuid4().hex[:12]}".encode()
        self.sockets: dict[str, zmq.asyncio.Socket] = {}
        server_key = str(remote.handle.get("curve_publickey") or "")
        client_keys = zmq.curve_keypair() if server_key else None
        for channel, kind in (("shell", zmq.DEALER), ("control", zmq.DEALER), ("stdin", zmq.DEALER)):
            s = ctx.socket(kind)
            s.linger = 0
            _secure(s, server_key, client_keys)
            s.reconnect_ivl = 10  # ms: the remote kernel binds a moment after we connect; retry quickly
            if channel != "control":
                s.routing_id = ident
            s.connect(remote.url(channel))
            self.sockets[channel] = s
        sub = ctx.socket(zmq.SUB)
        sub.linger = 0
        _secure(sub, server_key, client_keys)
        sub.reconnect_ivl = 10
        sub.subscribe(b"")
        sub.connect(remote.url("iopub"))
        self.sockets["iopub"] = sub
        self._sync = {name: zmq.Socket.shadow(sock.underlying) for name, sock in self.sockets.items()}
        self._private: dict[str, asyncio.Future[Message]] = {}
        self._private_idle: dict[str, asyncio.Event] = {}
        self._private_output: dict[str, list[Message]] = {}
        self._tasks = [
            asyncio.ensure_future(self._reply_loop("shell")),
            asyncio.ensure_future(self._reply_loop("control")),
            asyncio.ensure_future(self._stdin_loop()),
            asyncio.ensure_future(self._iopub_loop()),
        ]

    # -- client -> remote ---------------------------------------------------------------------------------
    def send(self, channel: str, frames: list[Any]) -> None:
        try:  # the common case: room in the queue, no future needed
            self._sync[channel].send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:  # the remote kernel is not reading (high-water mark): queue without blocking
            self.sockets[channel].send_multipart(frames)

    # -- remote -> client ---------------------------------------------------------------------------------
    # Hot path: wait for the first message with asyncio, then drain whatever else is queued with plain
    # non-blocking reads, and send to the client side synchronously (ROUTER and XPUB never block), so a
    # relayed message costs no futures beyond the first wait.
    async def _relay(self, channel: str, handle: Callable[[list[Any]], bool]) -> None:
        src = self.sockets[channel]
        raw = zmq.Socket.shadow(src.underlying)
        while True:
            frames = await src.recv_multipart()
            while True:
                handle(frames)
                try:
                    frames = raw.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break

    def _client_sender(self, channel: str) -> zmq.Socket[Any]:
        return zmq.Socket.shadow(self.client[channel].underlying)

    async def _reply_loop(self, channel: str) -> None:
        dst = self._client_sender(channel)

        def handle(frames: list[Any]) -> bool:
            if frames[0] == DELIM:  # a reply to one of our own requests
                msg = Message(frames)
                fut = self._private.pop(str(msg.parent.get("msg_id")), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
                return False
            dst.send_multipart(frames)
            self.on_reply(frames)
            return True

        await self._relay(channel, handle)

    async def _stdin_loop(self) -> None:
        dst = self._client_sender("stdin")
        await self._relay("stdin", lambda frames: dst.send_multipart(frames) or True)

    async def _iopub_loop(self) -> None:
        dst = self._client_sender("iopub")

        def handle(frames: list[Any]) -> bool:
            if self._private_idle and self._is_private(frames):
                return False
            dst.send_multipart(frames)
            return True

        await self._relay("iopub", handle)

    def _is_private(self, frames: list[bytes]) -> bool:
        try:
            msg = Message(frames)
        except (ValueError, json.JSONDecodeError):
            return False
        if msg.msg_type == "iopub_welcome":
            return True
        parent_id = str(msg.parent.get("msg_id"))
        if parent_id not in self._private_idle:
            return False
        if msg.msg_type == "status" and msg.content.get("execution_state") == "idle":
            self._private_idle[parent_id].set()
        else:
            self._private_output[parent_id].append(msg)
        return True

    # -- the gateway's own requests -------------------------------------------------------------------------
    async def request(
        self, msg_type: str, content: dict[str, Any], channel: str = "shell", timeout: float = 60.0
    ) -> tuple[Message, list[Message]]:
        """Send a request of the gateway's own; return its reply and the iopub output it caused."""
        frames = self.session.serialize(msg_type, content)
        msg_id = json.loads(frames[2])["msg_id"]
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._private[msg_id] = fut
        self._private_idle[msg_id] = idle = asyncio.Event()
        self._private_output[msg_id] = []
        try:
            self.sockets[channel].send_multipart(frames)
            reply = await asyncio.wait_for(fut, timeout)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(idle.wait(), 5.0)
            return reply, self._private_output[msg_id]
        finally:
            self._private.pop(msg_id, None)
            self._private_idle.pop(msg_id, None)
            self._private_output.pop(msg_id, None)

    async def execute_silently(self, code: str, timeout: float = 60.0, **extra: Any) -> Message:
        content = {
            "code": code,
            "silent": True,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": False,
        }
        content.update(extra)
        reply, _ = await self.request("execute_request", content, timeout=timeout)
        return reply

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for s in self.sockets.values():
            s.close(linger=0)
        for fut in self._private.values():
            if not fut.done():
                fut.set_exception(ConnectionError("the remote kernel is gone"))
