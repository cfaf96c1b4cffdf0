"""Run a cell over a Jupyter server's kernel websocket, the way JupyterLab does, and collect what comes back.

Shared by the jupyter_server test and the gateway-mode test: both talk to ``/api/kernels/{id}/channels`` with
the default (JSON) websocket protocol, where each message carries its ``channel`` and the server signs it.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session
from tornado.websocket import WebSocketClientConnection


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
    msg["channel"] = "shell"
    await ws.write_message(json.dumps(msg, default=json_default))
    msg_id = msg["header"]["msg_id"]
    run, idle = CellRun(), False
    deadline = time.monotonic() + timeout
    while not (run.reply and idle):
        raw = await asyncio.wait_for(ws.read_message(), max(0.1, deadline - time.monotonic()))
        if raw is None:
            raise ConnectionError(f"websocket closed while running {code!r}: {run}")
        m = json.loads(raw)
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
