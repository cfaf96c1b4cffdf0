"""GatewayKernel: the process a Jupyter client talks to when it picks "GPU (auto)".

It binds the five channels of its connection file, so to every client it *is* the kernel. While no remote
GPU kernel exists it answers what it can itself (kernel_info, comm_info, history, completions) and queues the
rest; the first cell that runs code triggers placement and a launch through the backend, with progress shown
in that cell; then frames are relayed both ways (see ``relay.py``). An idle timer releases the remote kernel
while the notebook stays open, and the next cell starts a new one.

Concurrency: the sockets belong to one I/O thread (``pump.py``) that relays the hot path by itself and hands
everything else to one asyncio loop, where each client channel is served by one task; the launch runs in its
own task so interrupts, status requests and ``%gpu`` cells are served while a GPU kernel is queued or
starting. Code called from the I/O thread (``fast_forward``, ``after_forward``, ``on_remote_reply``) only
updates plain state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..backends.base import ExitInfo, GatewayBackend, summary
from ..placement.release import FLAT
from ..placement.units import format_duration
from ..protocol import EventKind, ExitReason, KernelState, ReleaseReason
from . import replies
from .errors import (
    GatewayError,
    GpuError,
    GpuKernelLost,
    GpuMagicError,
    GpuPolicyError,
    GpuStartError,
    NoGpuKernel,
)
from .launch import Launch, LaunchContext
from .magic import USAGE, GpuCommand, MagicError, parse_magics, split_cell
from .pump import CLIENT_CHANNELS, Pump, PumpFailed
from .relay import RemoteLink
from .requests import RequestState
from .sockets import BoundSockets
from .status import GatewayStatus
from .status_comm import StatusChannel
from .wire import DELIM, DropLog, Malformed, Message, Session, Signer, load_dict

log = logging.getLogger("mlp_kernel.gateway")
DROPPED = DropLog(log.warning)  # frames anyone can send: rate-limited, or a flood of them floods the log

# Requests that must never start a GPU kernel: answered locally while none exists.
LOCAL_WHEN_IDLE = {
    "kernel_info_request",
    "comm_info_request",
    "history_request",
    "complete_request",
    "inspect_request",
    "is_complete_request",
}
# Requests the loop always handles itself, even while a remote kernel runs.
LOOP_ONLY = {"shutdown_request", "interrupt_request", "comm_info_request", "history_request"}
STATUS_REFRESH_S = 30.0


LEASE_RENEW_S = 60.0  # at most; a third of the backends' default 5 min lease


class GatewayKernel:
    def __init__(
        self,
        connection: dict[str, Any],
        requests: RequestState,
        backend: GatewayBackend,
        bound: BoundSockets,
        early: list[tuple[str, list[bytes]]] | None = None,
        connection_file: str = "",
    ) -> None:
        self.conn = connection
        self.connection_file = connection_file  # ours, the one clients use: what %connect_info shows
        self.requests = requests  # policy, defaults, overrides, placement calls
        self.backend = backend
        self.signer = Signer(connection.get("key", ""), connection.get("signature_scheme", "hmac-sha256"))
        self.session = Session(self.signer)
        self.pump = Pump(
            bound.context, bound.sockets, self.fast_forward, self.after_forward, self.on_remote_reply
        )
        self._early = early or []  # messages that arrived while the gateway was importing (early.py)
        self.status = GatewayStatus(kernel_id=requests.config.kernel_id, user=requests.config.user)
        status_path = Path(requests.config.status_path) if requests.config.status_path else None
        self.statusch = StatusChannel(self.status, self._publish, status_path)
        self._launch_ctx = LaunchContext(
            requests=requests,
            backend=backend,
            pump=self.pump,
            session=self.session,
            connection=connection,
            connection_file=connection_file,
            status=self.status,
            statusch=self.statusch,
            publish=self._publish,
        )
        self._loaded = False
        self.link: RemoteLink | None = None
        self.launch: Launch | None = None
        self.pending: list[tuple[str, Message]] = []  # (channel, request) waiting for a remote kernel
        self.inflight: dict[str, tuple[str, Message]] = {}  # msg_id -> (channel, request) sent to the remote
        self.exec_count = 0
        self.history: list[bytes] = []  # raw content of each execute_request, parsed when history is asked
        self.release_note: str | None = None
        self.releasing = False
        self._stopping = asyncio.Event()
        self._exit_watch: asyncio.Task[None] | None = None
        self._teardown_task: asyncio.Future[None] | None = None
        self._busy_since: float | None = None
        self._announced: set[str] = set()  # requests we said busy for and have not ended (nor forwarded)
        self._own_input: set[str] = set()  # ... and published execute_input for
        self._answered: set[str] = set()  # requests being handled that were answered (or forwarded) already
        self.exit_code = 0  # the process's: 1 when the gateway ended on a failure of its own

    def _ensure_loaded(self) -> None:
        """Read the policy and fill the status on first need, not during start-up (ready must be quick)."""
        if self._loaded:
            return
        self._loaded = True
        self.status.idle_timeout_s = self.requests.idle_timeout_s
        self.status.release_rule = self.requests.release_rule
        self.status.choices = self.requests.choices()
        self.status.request = self.requests.current()
        self.statusch.publish()

    # ------------------------------------------------------------------------------------------------ sockets
    def _welcome(self, subscription: bytes) -> None:
        """Tell each new iopub subscriber it is connected (JEP 65 ``iopub_welcome``, as ipykernel 7 does).

        Without it a client cannot know when iopub works, so it nudges with kernel_info or, like jupyter
        console, loses the first outputs.
        """
        self._publish("iopub_welcome", {"subscription": subscription.decode(errors="replace")}, None)

    async def run(self) -> None:
        self._queues: dict[str, asyncio.Queue[tuple[list[bytes], bool]]] = {
            name: asyncio.Queue() for name in CLIENT_CHANNELS
        }
        early, self._early = self._early, []
        for channel, raw in early:  # before the pump starts: they come first
            self._queues[channel].put_nowait((raw, False))
        self.pump.start()
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, self._ensure_loaded)
        tasks = [
            asyncio.ensure_future(self._supervise("pump", self._serve_pump)),
            asyncio.ensure_future(self._supervise("shell", lambda: self._serve("shell"))),
            asyncio.ensure_future(self._supervise("control", lambda: self._serve("control"))),
            asyncio.ensure_future(self._supervise("stdin", lambda: self._serve("stdin"))),
            asyncio.ensure_future(self._supervise("idle", self._idle_loop)),
            asyncio.ensure_future(self._supervise("parent watch", self._parent_watch)),
        ]
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(self.shutdown("signal")))
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGINT, lambda: None)  # interrupts arrive as messages
        await self._stopping.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.pump.stop()  # sends what is queued (the shutdown reply) and closes the sockets

    async def _supervise(self, name: str, serve: Callable[[], Awaitable[None]]) -> None:
        """Run one of the tasks that serve the notebook for as long as the kernel lives.

        Each handler already catches what one message can raise; this is the net under them. A task that ends
        anyway is logged and restarted (after a pause that grows if it keeps failing, so a bug cannot spin
        the CPU), because a silently ended task is the worst outcome: every later request of its channel, and
        then every cell, would wait forever. Only the I/O thread's end is fatal: without it nothing reaches
        the client, so the kernel ends loudly and the client sees a dead kernel instead of a hung one.
        """
        pause = 0.05
        while not self._stopping.is_set():
            try:
                await serve()
                if self._stopping.is_set():
                    return
                log.error("the gateway's %s task ended unexpectedly; restarting it", name)
            except asyncio.CancelledError:
                raise
            except PumpFailed:
                self.exit_code = 1
                log.critical("the gateway's I/O thread failed; the kernel ends (see the error above)")
                await self.shutdown("I/O thread failed")
                return
            except Exception:
                log.exception("the gateway's %s task failed; restarting it", name)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

    async def _serve_pump(self) -> None:
        await self.pump.serve(self._from_pump, self._welcome, self.statusch.publish)

    def _from_pump(self, channel: str, frames: list[bytes]) -> None:
        self._queues[channel].put_nowait((frames, True))

    async def _serve(self, channel: str) -> None:
        queue = self._queues[channel]
        while True:
            frames, counted = await queue.get()
            try:
                if channel == "stdin":
                    self._stdin(frames)
                else:
                    await self._handle(channel, frames)
            except Exception:  # never let one message end the task that serves the channel
                log.exception("error handling a message on %s", channel)
            finally:
                if counted:
                    self.pump.done(channel)

    async def _handle(self, channel: str, raw: list[bytes]) -> None:
        try:
            msg = Message(raw, self.signer).complete()  # the signature first, then every part
        except Malformed as exc:
            DROPPED(channel, "dropping a message on %s: %s", channel, exc)
            return
        try:
            await self._dispatch(channel, msg)
        except Exception as exc:  # never let one bad message take the kernel down, nor leave a client waiting
            log.exception("error handling %s on %s", msg.msg_type, channel)
            self._answer_failure(channel, msg, exc)
        finally:
            self._answered.discard(msg.msg_id)

    def _answer_failure(self, channel: str, msg: Message, exc: Exception) -> None:
        """A request whose handling failed still gets its reply (an error) and its ``idle``, once: a valid
        request with a value of the wrong type (``"n": "lots"`` in a history request) must not leave the
        client waiting forever, nor its status at busy."""
        with contextlib.suppress(Exception):
            if msg.msg_type.endswith("_request") and msg.msg_id not in self._answered:
                if msg.msg_id not in self._announced:
                    self._busy(msg.header)
                self._fail_request(channel, msg, GatewayError(f"{type(exc).__name__}: {exc}"))
            elif msg.msg_id in self._announced:
                self._idle(msg.header)

    def _stdin(self, frames: list[bytes]) -> None:
        if self.link is not None:
            self.status.last_activity = time.time()
            self.link.send("stdin", frames)

    def fast_forward(self, channel: str, frames: list[bytes]) -> Message | None:
        """I/O thread, before sending: may this client request go straight to the running remote kernel?

        Yes (the parsed message) unless the loop must see it (``%gpu`` lines, the status comm, ``LOOP_ONLY``)
        or it is not a valid signed message. On every request's path, so it reads only the header and the raw
        content bytes: a cell without the bytes ``%gpu`` and without JSON escapes holds no ``%gpu`` line.
        """
        try:
            msg = Message(frames, self.signer)  # the signature first
            t = msg.msg_type
            if t in LOOP_ONLY:
                return None
            if t == "execute_request":
                raw = msg.frames[4]
                if b"%gpu" in raw or (b"\\u" in raw and "%gpu" in str(msg.content["code"])):
                    return None
            elif t.startswith("comm_") and self._is_status_comm(msg):
                return None
        except Exception:  # Malformed, or a content without "code": the loop drops or answers it
            return None
        return msg

    def after_forward(self, channel: str, msg: Message) -> None:
        """I/O thread, a moment after ``fast_forward`` let a request through: what ``_forward`` does to the
        gateway's state. The cell's code is kept as raw content and read only if history is asked for."""
        if msg.msg_type == "execute_request":
            self.history.append(msg.frames[4])
        self._track(channel, msg)

    # ------------------------------------------------------------------------------------------- dispatching
    async def _dispatch(self, channel: str, msg: Message) -> None:
        t = msg.msg_type
        if t not in LOCAL_WHEN_IDLE:
            self._ensure_loaded()
        if t == "execute_request":
            await self._execute(channel, msg)
        elif t == "shutdown_request":
            await self._shutdown_request(channel, msg)
        elif t == "interrupt_request":
            await self._interrupt(channel, msg)
        elif t in ("comm_open", "comm_msg", "comm_close") and self._is_status_comm(msg):
            await self._status_comm(msg)
        elif t == "comm_info_request":
            await self._comm_info(channel, msg)
        elif t == "history_request":
            self._reply_local(channel, msg, "history_reply", replies.history(msg.content, 1, self._history()))
        elif self.link is not None:
            self._forward(channel, msg)
        elif t in LOCAL_WHEN_IDLE:
            self._answer_idle(channel, msg)
        elif t == "debug_request" and msg.content.get("command") == "debugInfo":
            self._reply_local(channel, msg, "debug_reply", replies.debug_info())
        elif t == "comm_open":
            # ipykernel closes comms for targets it does not know; there is no kernel to know any yet.
            self._publish("comm_close", {"comm_id": msg.content.get("comm_id"), "data": {}}, msg.header)
        elif t in ("comm_msg", "comm_close"):
            log.info("dropping %s for a comm of a released kernel", t)
        elif t.endswith("_request"):
            if self.launch is not None:  # a GPU kernel is starting for a cell: it answers this too
                self._queue(channel, msg)
            else:
                self._no_kernel(channel, msg)
        else:
            log.info("ignoring %s while no GPU kernel runs", t)

    def _no_kernel(self, channel: str, msg: Message) -> None:
        """Any other request while no GPU kernel runs: an error reply, the way a kernel without the feature
        answers (busy, reply, idle). Only running code may start a GPU kernel. JupyterLab learns from a
        running ipykernel that subshells exist and, after ``%gpu release``, still sends
        ``create_subshell_request``; the debugger's ``initialize``, jupyter-resource-usage's ``usage_request``
        and the like arrive the same way. Starting a GPU for them took one while the user did nothing, under
        a cell that said released."""
        log.info("answering %s locally: no GPU kernel is running", msg.msg_type)
        self._busy(msg.header)
        self._fail_request(
            channel,
            msg,
            NoGpuKernel(
                f"{msg.msg_type} is not available while no GPU kernel runs; "
                "GPU (auto) starts one only to run code (run a cell first)."
            ),
        )

    def _history(self) -> list[str]:
        """The cells run so far, as IPython would store them (not silent, ``store_history``)."""
        codes = []
        for raw in self.history:
            try:
                c = json.loads(raw)
                if c.get("store_history", True) and not c.get("silent"):
                    codes.append(str(c.get("code", "")))
            except (ValueError, AttributeError):
                continue
        return codes

    def _answer_idle(self, channel: str, msg: Message) -> None:
        t = msg.msg_type
        c = msg.content
        if t == "kernel_info_request":
            self._reply_local(channel, msg, "kernel_info_reply", replies.kernel_info())
        elif t == "complete_request":
            self._reply_local(channel, msg, "complete_reply", replies.complete(c))
        elif t == "inspect_request":
            self._reply_local(channel, msg, "inspect_reply", replies.inspect(c))
        elif t == "is_complete_request":
            self._reply_local(channel, msg, "is_complete_reply", replies.is_complete(c.get("code", "")))

    # ------------------------------------------------------------------------------------- message helpers
    def _publish(self, msg_type: str, content: dict[str, Any], parent: dict[str, Any] | None) -> None:
        topic = f"kernel.{self.status.kernel_id}.{msg_type}".encode()
        self.pump.to_client("iopub", self.session.serialize(msg_type, content, parent, idents=[topic]))

    def _busy(self, parent: dict[str, Any]) -> None:
        self._publish("status", {"execution_state": "busy"}, parent)
        if parent.get("msg_id"):
            self._announced.add(str(parent["msg_id"]))

    def _idle(self, parent: dict[str, Any]) -> None:
        self._publish("status", {"execution_state": "idle"}, parent)
        self._announced.discard(str(parent.get("msg_id")))
        self._own_input.discard(str(parent.get("msg_id")))

    def _send_reply(self, channel: str, msg: Message, reply_type: str, content: dict[str, Any]) -> None:
        frames = self.session.serialize(reply_type, content, msg.header, idents=msg.idents)
        self._answered.add(msg.msg_id)
        self.pump.to_client(channel, frames)

    def _reply_local(self, channel: str, msg: Message, reply_type: str, content: dict[str, Any]) -> None:
        self._busy(msg.header)
        self._send_reply(channel, msg, reply_type, content)
        self._idle(msg.header)

    def _stream(self, parent: dict[str, Any], text: str, name: str = "stdout") -> None:
        self._publish("stream", {"name": name, "text": text}, parent)

    def _fail_execute(self, channel: str, msg: Message, error: GpuError) -> None:
        """End an execute request with an error the user reads in the cell; the kernel stays usable."""
        ename, evalue = error.ename, str(error)
        if not msg.content.get("silent"):
            self.exec_count += 1
        err = {"ename": ename, "evalue": evalue, "traceback": [f"\x1b[0;31m{ename}\x1b[0m: {evalue}"]}
        # The iopub error is exactly ename, evalue, traceback (as ipykernel sends it): frontends save its
        # content as the notebook's output, and nbformat's schema rejects any other key (execution_count
        # made every notebook saved after a %gpu error invalid). The count belongs to the reply.
        self._publish("error", err, msg.header)
        reply = {"status": "error", "execution_count": self.exec_count, **err}
        self._send_reply(channel, msg, "execute_reply", reply)
        self._idle(msg.header)

    def _fail_request(self, channel: str, msg: Message, error: GpuError) -> None:
        """End any request with ``error``: in the cell for an execute request, else as the error reply the
        request's type has (a debug response for the debugger)."""
        ename, evalue = error.ename, str(error)
        if msg.msg_type == "execute_request":
            self._fail_execute(channel, msg, error)
        elif msg.msg_type == "debug_request":
            self._send_reply(
                channel,
                msg,
                "debug_reply",
                {
                    "type": "response",
                    "request_seq": msg.content.get("seq", 0),
                    "success": False,
                    "command": msg.content.get("command"),
                    "message": evalue,
                },
            )
            self._idle(msg.header)
        else:
            reply_type = msg.msg_type.replace("_request", "_reply")
            self._send_reply(
                channel,
                msg,
                reply_type,
                {"status": "error", "ename": ename, "evalue": evalue, "traceback": []},
            )
            self._idle(msg.header)

    # ------------------------------------------------------------------------------------------- execute
    async def _execute(self, channel: str, msg: Message) -> None:
        code = str(msg.content.get("code", ""))
        magics, rest = split_cell(code)
        self.history.append(msg.frames[4])
        if magics:
            self._busy(msg.header)
            if not msg.content.get("silent"):  # as ipykernel: the cell as sent, then its outputs
                content = {"code": code, "execution_count": self.exec_count + 1}
                self._publish("execute_input", content, msg.header)
                self._own_input.add(msg.msg_id)  # the remote's would show the code without the %gpu lines
            try:
                cmd = parse_magics(magics, self.requests.policy_view(), datetime.now(timezone.utc))
            except (GpuMagicError, GpuPolicyError) as exc:  # the %gpu line, or the policy itself, is wrong
                self._fail_execute(channel, msg, exc)
                return
            text = await self._apply(cmd, msg)
            if text:
                self._stream(msg.header, text + "\n")
            if not rest.strip():
                if not msg.content.get("silent"):
                    self.exec_count += 1
                reply = {
                    "status": "ok",
                    "execution_count": self.exec_count,
                    "user_expressions": {},
                    "payload": [],
                }
                self._send_reply(channel, msg, "execute_reply", reply)
                self._idle(msg.header)
                if self.link is not None:
                    asyncio.ensure_future(self._sync_count())
                return
            msg = Message(self.session.resign(msg.idents, msg.frames, {**msg.content, "code": rest}))
        if self.link is not None:
            self._forward(channel, msg)
            return
        if msg.content.get("silent") and not self.launch:
            # Setup code from a frontend (e.g. a silent %config) must not start a GPU kernel.
            self.requests.deferred_silent.append(str(msg.content.get("code", "")))
            self._reply_local(
                channel,
                msg,
                "execute_reply",
                {"status": "ok", "execution_count": self.exec_count, "user_expressions": {}, "payload": []},
            )
            return
        if not magics:
            self._busy(msg.header)
        self._queue(channel, msg)

    async def _sync_count(self) -> None:
        if self.link is not None:
            with contextlib.suppress(Exception):
                await self.link.execute_silently(
                    f"get_ipython().execution_count = {int(self.exec_count) + 1}"
                )

    async def _apply(self, cmd: GpuCommand, msg: Message) -> str:
        """Carry out the ``%gpu`` lines of a cell; return the text to show in it."""
        out: list[str] = []
        if cmd.idle_s is not None:
            self.requests.idle_timeout_s = self.status.idle_timeout_s = cmd.idle_s
            self.requests.release_rule = self.status.release_rule = FLAT  # the user's number, as stated
            self.status.last_activity = time.time()
            out.append(
                f"Idle timeout: {format_duration(cmd.idle_s) if cmd.idle_s else 'off (never released)'}"
            )
        if cmd.keep is not None:
            self.requests.set_keep(cmd.keep, cmd.keep_max_bytes)
            out.append(
                "Variables are kept across releases" if cmd.keep else "Variables are not kept across releases"
            )
        if cmd.changes_request:
            before = self.requests.current()
            if "reset" in cmd.verbs:
                self.requests.reset()
            self.requests.update(cmd.request)
            after = self.requests.current()
            self.status.request = after
            out.append(f"GPU request: {self.requests.describe(after)}")
            if (
                self.link is not None
                and after != before
                and not self.requests.satisfied_by_current(self.status)
            ):
                out.append(await self._release(ReleaseReason.MOVE, "to apply the new GPU request"))
        for verb in cmd.verbs:
            if verb == "status":
                out.append(self.status.describe())
            elif verb == "explain":
                d = self.status.decision
                out.append(d.explain() if d else "No placement decision yet: no cell has asked for a GPU.")
            elif verb == "help":
                out.append(USAGE)
            elif verb == "release":
                if self.link is None and self.launch is None:
                    out.append("No GPU kernel is running; nothing to release.")
                else:
                    out.append(await self._release(ReleaseReason.USER, "on request (%gpu release)"))
            elif verb == "forget":
                out.append(await self.requests.forget(self.link))
        self.statusch.publish()
        return "\n".join(out)

    # -------------------------------------------------------------------------------------------- launching
    def _queue(self, channel: str, msg: Message) -> None:
        self._answered.add(msg.msg_id)  # the kernel being started answers it, or on_launch_done fails it
        self.pending.append((channel, msg))
        if self.launch is None and not self.releasing:  # during a release: launched when it is over
            self._launch_pending()

    def _launch_pending(self) -> None:
        first = next((m for _, m in self.pending if m.msg_type == "execute_request"), None)
        self.launch = Launch(self._launch_ctx, self, first=first)
        self.launch.start()

    # -- LaunchObserver --------------------------------------------------------------------------------
    def next_execution_count(self) -> int:
        return self.exec_count + 1

    def take_release_note(self) -> str | None:
        note, self.release_note = self.release_note, None
        return note

    def launch_done(self, launch: Launch, link: RemoteLink | None, error: GpuError | None) -> None:
        """Called by ``Launch`` when it connected a remote kernel or gave up."""
        if launch is not self.launch:  # a launch that was replaced (cannot happen today): not ours to finish
            log.warning("a finished launch that is not the current one was ignored")
            return
        self.launch = None
        pending, self.pending = self.pending, []
        if link is None:
            for channel, msg in pending:
                self._fail_request(channel, msg, error or GpuStartError("The GPU kernel did not start."))
            self.statusch.publish()
            return
        self.link = link
        self._exit_watch = asyncio.ensure_future(self._watch_exit(link))
        if self.backend.holds_lease(link.remote):
            asyncio.ensure_future(self._renew_lease(link))
        self.status.last_activity = time.time()
        for channel, msg in pending:
            self._forward(channel, msg)
        self.pump.fast = True  # after the pending requests: nothing may overtake them
        self.statusch.publish()

    def _forward(self, channel: str, msg: Message) -> None:
        assert self.link is not None
        self._answered.add(msg.msg_id)  # the remote kernel answers it
        self._track(channel, msg)
        if msg.msg_id in self._announced:  # the client saw our busy: the remote's would be a second one
            self._announced.discard(msg.msg_id)
            self.pump.announced.add(msg.msg_id)
        if msg.msg_id in self._own_input:  # and our execute_input, with the cell as the user wrote it
            self._own_input.discard(msg.msg_id)
            self.pump.own_input.add(msg.msg_id)
        self.link.send(channel, msg.raw())

    def _track(self, channel: str, msg: Message) -> None:
        """A request goes to the remote kernel: remember it until its reply; a cell makes the kernel busy."""
        if msg.msg_type.endswith("_request"):
            self.inflight[msg.msg_id] = (channel, msg)
            if msg.msg_type == "execute_request" and not self.status.busy:
                self.status.busy = True
                self._busy_since = time.time()
        self.status.last_activity = time.time()

    def on_remote_reply(self, frames: list[bytes]) -> bool:
        """I/O thread: a reply went from the remote kernel to a client: track in-flight requests and
        activity. True when the last running cell ended (the pump then asks the loop to publish status)."""
        try:
            i = frames.index(DELIM)
            parent_id = str(load_dict(frames[i + 3], "parent header").get("msg_id"))
        except (ValueError, IndexError):  # incl. Malformed: relayed anyway, the client judges it
            return False
        entry = self.inflight.pop(parent_id, None)
        self.status.last_activity = time.time()
        if entry is None or entry[1].msg_type != "execute_request":
            return False
        with contextlib.suppress(ValueError, IndexError):
            count = load_dict(frames[i + 5], "content").get("execution_count")
            if isinstance(count, int) and count > 0:
                self.exec_count = count
        if any(m.msg_type == "execute_request" for _, m in list(self.inflight.values())):
            return False
        self._end_busy()
        return True

    def _end_busy(self) -> None:
        if self.status.busy and self._busy_since:
            self.status.gpu_seconds_busy += (time.time() - self._busy_since) * max(1, self.status.gpu_count)
        self.status.busy = False
        self._busy_since = None
        self.status.last_activity = time.time()

    async def _renew_lease(self, link: RemoteLink) -> None:
        """Renew the remote kernel's lease while it is ours, so `mlp-kernel gc` leaves it alone: at once
        (a long start may have used up the lease), then every third of the backend's lease duration."""
        every = self.backend.renew_interval_s(link.remote, LEASE_RENEW_S)
        interval = 0.0
        while self.link is link:
            await asyncio.sleep(interval)
            if self.link is not link:
                return
            try:
                await self.backend.renew(link.remote)
                interval = every
            except Exception as exc:  # a flaky API server: retry sooner, never end the kernel for it
                log.warning("could not renew the kernel lease: %s", exc)
                interval = min(10.0, every)

    async def _watch_exit(self, link: RemoteLink) -> None:
        info = await self.backend.wait_exit(link.remote)
        if self.link is link and not self.releasing:
            await self._remote_died(info)

    async def _remote_died(self, info: ExitInfo) -> None:
        log.warning("remote kernel died: %s", info.message)
        self.pump.fast = False
        await self.pump.flush()  # requests relayed a moment ago are in ``inflight`` now: answer them too
        link, self.link = self.link, None
        self.pump.forget_announced()  # that kernel's busy will never come
        if link is not None:
            await link.close()
            with contextlib.suppress(Exception):
                await self.backend.release(link.remote)
        inflight, self.inflight = self.inflight, {}
        line = summary(info.message)
        for channel, msg in list(inflight.values()):
            if msg.msg_type == "execute_request":
                self._stream(msg.header, f"\n[GPU (auto)] {line}\n", "stderr")
            self._fail_request(channel, msg, GpuKernelLost(info.message))
        self._end_busy()
        self.statusch.publish_soon()
        self.requests.clear_record()
        reason = ExitReason.of(info.reason)
        self._mark_released(reason, line)
        self.statusch.event(reason.event_kind(), line)

    # ------------------------------------------------------------------------------------------- releasing
    async def _release(self, reason: ReleaseReason, why: str) -> str:
        """Release the remote kernel (or cancel its launch); return the line to show the user."""
        if self.launch is not None:
            await self.launch.cancel(f"Start cancelled {why}.")
            return f"GPU kernel start cancelled {why}."
        link = self.link
        if link is None or self.releasing:
            return "No GPU kernel is running."
        self.releasing = True
        self.pump.fast = False  # from here on the loop sees every request
        try:
            await self.pump.flush()  # requests relayed a moment ago are in ``inflight`` now
            if reason == ReleaseReason.IDLE and self.inflight:  # a cell started just now: not idle after all
                self.pump.fast = self.link is link
                return "A cell started; the GPU kernel was kept."
            self.statusch.move(KernelState.RELEASING, f"Releasing the GPU {why}")
            ok, note = await self.requests.before_release(self.status, link, reason)
            if not ok and reason == ReleaseReason.IDLE:
                # Never drop a user's state unasked: keep the kernel, try again after another idle period.
                self.status.last_activity = time.time()
                kept = f"{note} The GPU kernel was kept."
                self.pump.fast = self.link is link
                self.statusch.event(EventKind.ERROR, kept)
                self.statusch.move(KernelState.RUNNING, kept)
                return kept
            self.link = None
            self.pump.forget_announced()
            if self._exit_watch:
                self._exit_watch.cancel()
            await link.close()
            await self.backend.release(link.remote)
            self.requests.clear_record()
            held = time.time() - (self.status.since or time.time())
            message = (
                f"GPU released {why} (held {format_duration(held)} on "
                f"{self.status.member}/{self.status.flavor})."
            )
            if note:
                message += " " + note
            self._mark_released(reason, message)
            self.statusch.event(EventKind.RELEASED, message)
            return message
        finally:
            self.releasing = False
            if self.pending and self.link is None and self.launch is None:
                self._launch_pending()  # cells run while the GPU was being released: a new kernel for them

    def _mark_released(self, reason: ReleaseReason | ExitReason, message: str) -> None:
        s = self.status
        s.cost_before = s.cost_so_far()
        s.since, s.busy = None, False
        self.statusch.move(KernelState.RELEASED, phase=None, queue=None, publish=False)
        s.last_release = {
            "reason": reason,
            "at": datetime.now(timezone.utc).isoformat(),
            "idle_s": s.idle_limit() if reason == ReleaseReason.IDLE else None,
            "message": message,
        }
        s.message = message + " The next cell starts a new GPU kernel."
        self.release_note = message
        self.statusch.publish()

    async def _idle_loop(self) -> None:
        while True:
            timeout = self.status.idle_limit()
            await asyncio.sleep(min(5.0, max(0.2, (timeout or 60) / 10)))
            timeout = self.status.idle_limit()  # the rule may have changed while asleep
            s = self.status
            stale = time.time() - self.statusch.last_publish >= STATUS_REFRESH_S
            if s.state == KernelState.RUNNING and stale:
                self.statusch.publish()  # keeps cost and countdowns fresh for clients without timers
            if (
                self.link is None
                or self.releasing
                or timeout is None
                or self.inflight
                or time.time() - s.last_activity < timeout
            ):
                continue
            idle_for = format_duration(time.time() - s.last_activity)
            await self._release(ReleaseReason.IDLE, f"after {idle_for} idle")

    async def _parent_watch(self) -> None:
        """End (and release the GPU) when the process that started us is gone, e.g. a crashed server."""
        parent = os.getppid()
        while True:
            await asyncio.sleep(1.0)
            if os.getppid() != parent:
                log.warning("parent process %d is gone; shutting down", parent)
                await self.shutdown("parent gone")
                return

    # ----------------------------------------------------------------------------------- control requests
    async def _interrupt(self, channel: str, msg: Message) -> None:
        if self.launch is not None:
            await self.launch.cancel("Interrupted: the GPU kernel start was cancelled.")
            self._send_reply(channel, msg, "interrupt_reply", {"status": "ok"})
        elif self.link is not None:
            self._forward(channel, msg)
        else:
            self._send_reply(channel, msg, "interrupt_reply", {"status": "ok"})

    async def _shutdown_request(self, channel: str, msg: Message) -> None:
        restart = bool(msg.content.get("restart"))
        await self._teardown()
        self._send_reply(channel, msg, "shutdown_reply", {"status": "ok", "restart": restart})
        self._publish("status", {"execution_state": "dead"}, msg.header)
        if not restart:
            self.statusch.drop_file()
        await asyncio.sleep(0.05)  # let the reply leave before the sockets close
        self._stopping.set()

    async def _teardown(self) -> None:
        """Release the remote kernel, once, however many ways out ask for it at the same time.

        jupyter console sends shutdown_request and exits at once, so the parent watch (or a signal) asks again
        while the release is under way. The second caller joins it: a teardown of its own would find no link,
        stop the gateway and cut the first one short (a pod or a record left behind).
        """
        if self._teardown_task is None or self._teardown_task.done():
            self._teardown_task = asyncio.ensure_future(self._release_all())
        await asyncio.shield(self._teardown_task)

    async def _release_all(self) -> None:
        if self.launch is not None:
            await self.launch.cancel("The kernel is shutting down.")
        self.pump.fast = False
        link, self.link = self.link, None
        self.pump.forget_announced()  # that kernel's busy will never come
        if link is not None:
            if self._exit_watch:
                self._exit_watch.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    link.request("shutdown_request", {"restart": False}, "control", 2.0), 3.0
                )
            await link.close()
            await self.backend.release(link.remote)
            self.requests.clear_record()
        await self.requests.on_shutdown()
        self.statusch.move(KernelState.CPU_ONLY, "Shut down")

    async def shutdown(self, why: str) -> None:
        if self._stopping.is_set():
            return
        log.info("shutting down: %s", why)
        with contextlib.suppress(Exception):
            await self._teardown()
        self.statusch.drop_file()
        self._stopping.set()

    # -------------------------------------------------------------------------------------- status comm
    def _is_status_comm(self, msg: Message) -> bool:
        return self.statusch.is_ours(msg.content)

    async def _status_comm(self, msg: Message) -> None:
        c = msg.content
        comm_id = str(c.get("comm_id"))
        self._busy(msg.header)
        if msg.msg_type == "comm_open":
            self.statusch.open(comm_id, msg.header)
        elif msg.msg_type == "comm_close":
            self.statusch.close(comm_id)
        else:
            data = c.get("data")
            await self._comm_action(comm_id, data if isinstance(data, dict) else {}, msg)
        self._idle(msg.header)

    async def _comm_action(self, comm_id: str, data: dict[str, Any], msg: Message) -> None:
        action = data.get("action")
        if action == "refresh":
            self.statusch.send(comm_id, dict(self.status.snapshot()), msg.header)
        elif action == "release":
            await self._release(ReleaseReason.USER, "on request")
        elif action == "request":
            try:
                cmd = parse_magics([f"%gpu {data.get('options', '')}"], self.requests.policy_view())
                if cmd.verbs:
                    raise MagicError("only GPU request options are accepted here")
            except (GpuMagicError, GpuPolicyError) as exc:
                self.statusch.error(comm_id, str(exc), msg.header)
                return
            await self._apply(cmd, msg)
        else:
            self.statusch.error(comm_id, f"unknown action {action!r}", msg.header)

    async def _comm_info(self, channel: str, msg: Message) -> None:
        target = msg.content.get("target_name")
        comms: dict[str, Any] = self.statusch.comm_info(target)
        if self.link is not None:
            with contextlib.suppress(Exception):
                reply, _ = await self.link.request("comm_info_request", dict(msg.content), timeout=10.0)
                comms.update(reply.content.get("comms", {}))
        self._reply_local(channel, msg, "comm_info_reply", {"status": "ok", "comms": comms})
