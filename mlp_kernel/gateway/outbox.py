"""What the gateway itself says to the client: its replies, status, streams and errors, signed and in order.

One job: turn "answer this request", "this request failed with that ``GpuError``", "say busy/idle" into the
messages a kernel sends, the way ipykernel sends them (busy, reply, idle; an error both on iopub and in the
reply), and remember what was said so nothing is said twice. The router and the remote session both speak
through it; neither builds a message itself.

Three sets of message ids keep the conversation honest when a request is answered partly by the gateway and
partly by the remote kernel: ``announced`` (we said busy and have not said idle), ``own_input`` (we published
the cell's ``execute_input``, with its ``%gpu`` lines), and ``answered`` (a reply was sent or the request was
handed to someone who will send one). ``hand_over`` moves the first two to the pump when a request goes to
the remote kernel, so the pump drops the remote's duplicate busy and execute_input.
"""

from __future__ import annotations

from typing import Any

from .errors import GpuError
from .pump import Pump
from .wire import Message, Session


def sentences(*parts: str | None) -> str:
    """Join message parts as sentences: each ends with a full stop before the next starts (a snapshot's
    summary "Saved 1 variable (5 B) in 0.0 s" followed by "Starting ..." read as one run-on line)."""
    out = []
    for part in parts:
        text = (part or "").strip()
        if text:
            out.append(text if text[-1] in ".!?:" else text + ".")
    return " ".join(out)


class Outbox:
    def __init__(self, pump: Pump, session: Session, kernel_id: str) -> None:
        self.pump = pump
        self.session = session
        self.topic_prefix = f"kernel.{kernel_id}."
        self.exec_count = 0  # the notebook's execution count, as the last reply said it
        self.announced: set[str] = set()  # requests we said busy for and have not ended (nor forwarded)
        self.own_input: set[str] = set()  # ... and published execute_input for
        self.answered: set[str] = set()  # requests being handled that were answered (or forwarded) already

    def publish(self, msg_type: str, content: dict[str, Any], parent: dict[str, Any] | None) -> None:
        topic = (self.topic_prefix + msg_type).encode()
        self.pump.to_client("iopub", self.session.serialize(msg_type, content, parent, idents=[topic]))

    def busy(self, parent: dict[str, Any]) -> None:
        self.publish("status", {"execution_state": "busy"}, parent)
        if parent.get("msg_id"):
            self.announced.add(str(parent["msg_id"]))

    def idle(self, parent: dict[str, Any]) -> None:
        self.publish("status", {"execution_state": "idle"}, parent)
        self.announced.discard(str(parent.get("msg_id")))
        self.own_input.discard(str(parent.get("msg_id")))

    def execute_input(self, msg: Message, code: str) -> None:
        """The cell as the user wrote it (with its ``%gpu`` lines), before its outputs, as ipykernel does."""
        self.publish("execute_input", {"code": code, "execution_count": self.exec_count + 1}, msg.header)
        self.own_input.add(msg.msg_id)  # the remote's would show the code without the %gpu lines

    def reply(self, channel: str, msg: Message, reply_type: str, content: dict[str, Any]) -> None:
        frames = self.session.serialize(reply_type, content, msg.header, idents=msg.idents)
        self.answered.add(msg.msg_id)
        self.pump.to_client(channel, frames)

    def reply_local(self, channel: str, msg: Message, reply_type: str, content: dict[str, Any]) -> None:
        """A request the gateway answers whole: busy, reply, idle."""
        self.busy(msg.header)
        self.reply(channel, msg, reply_type, content)
        self.idle(msg.header)

    def execute_ok(self, channel: str, msg: Message) -> None:
        """End a cell that held only ``%gpu`` lines: ok, and counted unless silent."""
        if not msg.content.get("silent"):
            self.exec_count += 1
        content = {"status": "ok", "execution_count": self.exec_count, "user_expressions": {}, "payload": []}
        self.reply(channel, msg, "execute_reply", content)
        self.idle(msg.header)

    def stream(self, parent: dict[str, Any], text: str, name: str = "stdout") -> None:
        self.publish("stream", {"name": name, "text": text}, parent)

    def hand_over(self, msg: Message) -> None:
        """``msg`` goes to the remote kernel, which answers it; what we said already, the pump filters."""
        self.answered.add(msg.msg_id)
        if msg.msg_id in self.announced:  # the client saw our busy: the remote's would be a second one
            self.announced.discard(msg.msg_id)
            self.pump.announced.add(msg.msg_id)
        if msg.msg_id in self.own_input:  # and our execute_input, with the cell as the user wrote it
            self.own_input.discard(msg.msg_id)
            self.pump.own_input.add(msg.msg_id)

    def fail(self, channel: str, msg: Message, error: GpuError) -> None:
        """End any request with ``error``: in the cell for an execute request, else as the error reply the
        request's type has (a debug response for the debugger)."""
        ename, evalue = error.ename, str(error)
        if msg.msg_type == "execute_request":
            if not msg.content.get("silent"):
                self.exec_count += 1
            err = {"ename": ename, "evalue": evalue, "traceback": [f"\x1b[0;31m{ename}\x1b[0m: {evalue}"]}
            # The iopub error is exactly ename, evalue, traceback (as ipykernel sends it): frontends save its
            # content as the notebook's output, and nbformat's schema rejects any other key (execution_count
            # made every notebook saved after a %gpu error invalid). The count belongs to the reply.
            self.publish("error", err, msg.header)
            self.reply(
                channel, msg, "execute_reply", {"status": "error", "execution_count": self.exec_count, **err}
            )
        elif msg.msg_type == "debug_request":
            content = {
                "type": "response",
                "request_seq": msg.content.get("seq", 0),
                "success": False,
                "command": msg.content.get("command"),
                "message": evalue,
            }
            self.reply(channel, msg, "debug_reply", content)
        else:
            content = {"status": "error", "ename": ename, "evalue": evalue, "traceback": []}
            self.reply(channel, msg, msg.msg_type.replace("_request", "_reply"), content)
        self.idle(msg.header)
