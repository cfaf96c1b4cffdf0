"""Run a cell over a Jupyter server's kernel websocket, the way JupyterLab does, and collect what comes back.

Shared by the jupyter_server test and the gateway-mode test: both talk to ``/api/kernels/{id}/channels``,
either with the legacy JSON protocol (each message a JSON text carrying its ``channel``) or with the binary
``v1.kernel.websocket.jupyter.org`` protocol that JupyterLab 4 asks for (offsets, channel, then the message
parts, which the server passes to and from the kernel's sockets without re-encoding them).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session
from jupyter_server.services.kernels.connection.base import (
    deserialize_msg_from_ws_v1,
    serialize_msg_to_ws_v1,
)
from tornado.websocket import WebSocketClientConnection

V1 = "v1.kernel.websocket.jupyter.org"


def _pack(obj: Any) -> bytes:
    return json.dumps(obj, default=json_default).encode()


def _decode(raw: str | bytes) -> dict[str, Any]:
    """One websocket message, in either protocol, as a dict with ``channel``."""
    if isinstance(raw, str):
        return dict(json.loads(raw))
    channel, parts = deserialize_msg_from_ws_v1(raw)
    header, parent, metadata, content = (json.loads(p) for p in parts[:4])
    return {
        "channel": channel,
        "header": header,
        "parent_header": parent,
        "metadata": metadata,
        "content": content,
    }


@dataclass
class CellRun:
    reply: dict[str, Any] = field(default_factory=dict)
    outputs: list[dict[str, Any]] = field(default_factory=list)  # iopub content, with "msg_type" added

    @property
    def stdout(self) -> str:
        return "".join(o["text"] for o in self.outputs if o["msg_type"] == "stream" and o["name"] == "stdout")

    def of_type(self, msg_type: str) -> list[dict[str, Any]]:
        return [o for o in self.outputs if o["msg_type"] == msg_type]


async def run_cell(ws: WebSocketClientConnection, code: str, timeout: float = 180.0) -> CellRun:
    """Send an execute_request; return its reply and iopub outputs once the kernel is idle again."""
    session = Session(username="client-test")
    msg = session.msg(
        "execute_request",
        {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
    )
    if ws.selected_subprotocol == V1:
        await ws.write_message(serialize_msg_to_ws_v1(msg, "shell", _pack), binary=True)
    else:
        await ws.write_message(json.dumps({**msg, "channel": "shell"}, default=json_default))
    msg_id = msg["header"]["msg_id"]
    run, idle = CellRun(), False
    deadline = time.monotonic() + timeout
    while not (run.reply and idle):
        raw = await asyncio.wait_for(ws.read_message(), max(0.1, deadline - time.monotonic()))
        if raw is None:
            raise ConnectionError(f"websocket closed while running {code!r}: {run}")
        m = _decode(raw)
        if m.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        t = m["header"]["msg_type"]
        if m["channel"] == "shell" and t == "execute_reply":
            run.reply = m["content"]
        elif t == "status":
            idle = m["content"]["execution_state"] == "idle"
        elif m["channel"] == "iopub" and t != "execute_input":
            run.outputs.append({"msg_type": t, **m["content"]})
    return run
