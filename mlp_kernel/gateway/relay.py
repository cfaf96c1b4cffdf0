"""One remote kernel as the gateway sees it: where it is, and the gateway's own requests to it.

The frames themselves travel through the I/O thread (``pump.py``), which owns the sockets. Client ROUTER ⇄
DEALER keeps client identities: the DEALER forwards the client's identity frames as the first frames, the
remote ROUTER prepends ours, and on the way back the remote strips ours so the frames we receive start with
the client's identity, which our ROUTER routes on. Shell and stdin DEALERs share one routing id so
``input_request``s (which ipykernel addresses to the shell requester's identity) find their way back.

The hot path (iopub, shell replies) forwards frames untouched; the remote kernel was started with the same
HMAC key. The gateway's own requests to the remote kernel (bootstrap, snapshots) carry no client identity, so
their replies start with the delimiter and are handed here instead of being forwarded; their iopub messages
are filtered only while such a request is in flight, so normal output pays no JSON parsing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any

import zmq

from ..backends.base import RemoteKernel
from .pump import REMOTE_CHANNELS, Pump
from .wire import DropLog, Malformed, Message, Session

log = logging.getLogger(__name__)
DROPPED = DropLog(log.warning)


class RemoteLink:
    def __init__(self, pump: Pump, remote: RemoteKernel, session: Session) -> None:
        self.pump = pump
        self.remote = remote
        self.session = session
        self.id = uuid.uuid4().hex
        config: dict[str, Any] = {
            "urls": {channel: remote.url(channel) for channel in REMOTE_CHANNELS},
            "ident": f"mlp-gw-{self.id[:12]}",
        }
        server_key = str(remote.handle.get("curve_publickey") or "")
        if server_key:  # CurveZMQ to a remote kernel that published a server key (Kubernetes, curve=true)
            public, secret = zmq.curve_keypair()
            config["curve"] = {"server": server_key, "public": public.decode(), "secret": secret.decode()}
        self._private: dict[str, asyncio.Future[Message]] = {}
        self._private_idle: dict[str, asyncio.Event] = {}
        self._private_output: dict[str, list[Message]] = {}
        self.closed = False
        pump.attach(self, config)

    # -- client -> remote ---------------------------------------------------------------------------------
    def send(self, channel: str, frames: list[bytes]) -> None:
        self.pump.to_remote(self.id, channel, frames)

    # -- remote -> gateway (called by the pump's loop side) --------------------------------------------------
    def on_private_reply(self, frames: list[bytes]) -> None:
        try:
            msg = Message(frames, self.session.signer).complete()
        except Malformed as exc:
            DROPPED("remote replies", "dropping a reply from the remote kernel: %s", exc)
            return
        fut = self._private.pop(str(msg.parent.get("msg_id")), None)
        if fut is not None and not fut.done():
            fut.set_result(msg)

    def on_private_iopub(self, frames: list[bytes]) -> None:
        try:
            msg = Message(frames, self.session.signer).complete()
        except Malformed as exc:
            DROPPED("remote output", "dropping output from the remote kernel: %s", exc)
            return
        parent_id = str(msg.parent.get("msg_id"))
        if parent_id not in self._private_idle:
            return  # the remote's iopub_welcome, or output of a request that timed out
        if msg.msg_type == "status" and msg.content.get("execution_state") == "idle":
            self._private_idle[parent_id].set()
        else:
            self._private_output[parent_id].append(msg)

    # -- the gateway's own requests -------------------------------------------------------------------------
    async def request(
        self,
        msg_type: str,
        content: dict[str, Any],
        channel: str = "shell",
        timeout: float = 60.0,
        output: bool = True,
    ) -> tuple[Message, list[Message]]:
        """Send a request of the gateway's own; return its reply and the iopub output it caused.

        With ``output`` it waits up to 5 s after the reply for the kernel's ``idle``; without, for the reply
        alone: a ``shutdown_request``'s ``idle`` may never come (the kernel stops its loop after replying)."""
        frames = self.session.serialize(msg_type, content)
        msg_id = json.loads(frames[2])["msg_id"]
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        if self.closed:
            raise ConnectionError("the remote kernel is gone")
        self._private[msg_id] = fut
        self._private_idle[msg_id] = idle = asyncio.Event()
        self._private_output[msg_id] = []
        self.pump.private_ids.add(msg_id)
        try:
            self.send(channel, frames)
            reply = await asyncio.wait_for(fut, timeout)
            if output:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(idle.wait(), 5.0)
            return reply, self._private_output[msg_id]
        finally:
            self.pump.private_ids.discard(msg_id)
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
        if self.closed:
            return
        self.closed = True
        self.pump.detach(self)
        for fut in self._private.values():
            if not fut.done():
                fut.set_exception(ConnectionError("the remote kernel is gone"))
