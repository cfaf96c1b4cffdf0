"""GatewayKernel: the process a Jupyter client talks to when it picks "GPU (auto)"; here, its router.

It binds the five channels of its connection file, so to every client it *is* the kernel. This module only
routes: each request is answered locally (kernel_info, comm_info, history, completions while no GPU kernel
exists), handed to the remote session (``session.py``: launch, relay, release, idle timer, lease, exit
watch), applied as ``%gpu`` (``apply.py``), or given to the status channel (``status_comm.py``). What the
gateway says itself goes through the outbox (``outbox.py``). The first cell that runs code starts a remote
GPU kernel; an idle timer releases it while the notebook stays open, and the next cell starts a new one.

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
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..backends.base import GatewayBackend
from ..clock import SYSTEM, Clock
from ..protocol import PrestartCell, ReleaseReason
from . import replies
from .apply import apply_command
from .errors import GatewayError, GpuMagicError, GpuPolicyError, NoGpuKernel
from .launch import LaunchContext
from .magic import MagicError, parse_magics, split_cell
from .outbox import Outbox
from .pump import CLIENT_CHANNELS, Pump, PumpFailed
from .requests import RequestState
from .session import RemoteSession
from .sockets import BoundSockets
from .status import GatewayStatus
from .status_comm import StatusChannel
from .wire import DropLog, Malformed, Message, Session, Signer

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
# Shell requests the pump's C hot path may relay itself (``_hotpath.c``): those ``fast_forward`` lets through
# on their header alone (``execute_request`` also on its content, which the C screen checks for ``%gpu`` the
# same way). Everything else, comms included, still reaches ``fast_forward`` in Python.
C_FORWARDABLE = (
    "execute_request",
    "complete_request",
    "inspect_request",
    "is_complete_request",
    "kernel_info_request",
)
assert not LOOP_ONLY & set(C_FORWARDABLE)


class GatewayKernel:
    def __init__(
        self,
        connection: dict[str, Any],
        requests: RequestState,
        backend: GatewayBackend,
        bound: BoundSockets,
        early: list[tuple[str, list[bytes]]] | None = None,
        connection_file: str = "",
        clock: Clock = SYSTEM,
    ) -> None:
        self.requests = requests  # policy, defaults, overrides, placement calls
        scheme = connection.get("signature_scheme", "hmac-sha256")
        self.signer = Signer(connection.get("key", ""), scheme)
        wire = Session(self.signer)
        c_requests = (
            (self.signer.key, tuple(t.encode() for t in C_FORWARDABLE)) if scheme == "hmac-sha256" else None
        )
        self.pump = Pump(
            bound.context,
            bound.sockets,
            self.fast_forward,
            self.after_forward,
            self._on_reply,
            c_requests=c_requests,
        )
        self._early = early or []  # messages that arrived while the gateway was importing (early.py)
        self.status = GatewayStatus(
            kernel_id=requests.config.kernel_id, user=requests.config.user, clock=clock
        )
        self.out = Outbox(self.pump, wire, self.status.kernel_id)
        status_path = Path(requests.config.status_path) if requests.config.status_path else None
        self.statusch = StatusChannel(self.status, self.out.publish, status_path)
        ctx = LaunchContext(
            requests=requests,
            backend=backend,
            pump=self.pump,
            session=wire,
            connection=connection,
            connection_file=connection_file,  # ours, the one clients use: what %connect_info shows
            status=self.status,
            statusch=self.statusch,
            publish=self.out.publish,
            clock=clock,
        )
        self.remote = RemoteSession(ctx, self.out)
        self._loaded = False
        self.history: list[bytes] = []  # raw content of each execute_request, parsed when history is asked
        self._stopping = asyncio.Event()
        self.exit_code = 0  # the process's: 1 when the gateway ended on a failure of its own

    def _on_reply(self, frames: list[bytes]) -> bool:
        return self.remote.on_remote_reply(frames)

    def _ensure_loaded(self) -> None:
        """Read the policy and fill the status on first need, not during start-up (ready must be quick)."""
        if self._loaded:
            return
        self._loaded = True
        self.status.idle_timeout_s = self.requests.idle_timeout_s
        self.status.release_rule = self.requests.release_rule
        prestart = self.requests.prestart  # the extension asks for pre-starts only when this is on
        self.status.prestart_hold_s = prestart.hold_s if prestart else None
        self.status.prestart_first = bool(prestart and prestart.first)
        self.status.choices = self.requests.choices()
        self.status.request = self.requests.current()
        self.statusch.publish()

    # ------------------------------------------------------------------------------------------------ sockets
    def _welcome(self, subscription: bytes) -> None:
        """Tell each new iopub subscriber it is connected (JEP 65 ``iopub_welcome``, as ipykernel 7 does).

        Without it a client cannot know when iopub works, so it nudges with kernel_info or, like jupyter
        console, loses the first outputs.
        """
        self.out.publish("iopub_welcome", {"subscription": subscription.decode(errors="replace")}, None)

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
            asyncio.ensure_future(self._supervise("idle", self.remote.idle_loop)),
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
                    self.remote.stdin(frames)
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
            self.out.answered.discard(msg.msg_id)

    def _answer_failure(self, channel: str, msg: Message, exc: Exception) -> None:
        """A request whose handling failed still gets its reply (an error) and its ``idle``, once: a valid
        request with a value of the wrong type (``"n": "lots"`` in a history request) must not leave the
        client waiting forever, nor its status at busy."""
        with contextlib.suppress(Exception):
            if msg.msg_type.endswith("_request") and msg.msg_id not in self.out.answered:
                if msg.msg_id not in self.out.announced:
                    self.out.busy(msg.header)
                self.out.fail(channel, msg, GatewayError(f"{type(exc).__name__}: {exc}"))
            elif msg.msg_id in self.out.announced:
                self.out.idle(msg.header)

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
        self.remote.track(channel, msg)

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
            self.out.reply_local(
                channel, msg, "history_reply", replies.history(msg.content, 1, self._history())
            )
        elif self.remote.link is not None:
            self.remote.forward(channel, msg)
        elif t in LOCAL_WHEN_IDLE:
            self._answer_idle(channel, msg)
        elif t == "debug_request" and msg.content.get("command") == "debugInfo":
            self.out.reply_local(channel, msg, "debug_reply", replies.debug_info())
        elif t == "comm_open":
            # ipykernel closes comms for targets it does not know; there is no kernel to know any yet.
            self.out.publish("comm_close", {"comm_id": msg.content.get("comm_id"), "data": {}}, msg.header)
        elif t in ("comm_msg", "comm_close"):
            log.info("dropping %s for a comm of a released kernel", t)
        elif t.endswith("_request"):
            if self.remote.launch is not None:  # a GPU kernel is starting for a cell: it answers this too
                self.remote.submit(channel, msg)
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
        self.out.busy(msg.header)
        self.out.fail(
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
            self.out.reply_local(channel, msg, "kernel_info_reply", replies.kernel_info())
        elif t == "complete_request":
            self.out.reply_local(channel, msg, "complete_reply", replies.complete(c))
        elif t == "inspect_request":
            self.out.reply_local(channel, msg, "inspect_reply", replies.inspect(c))
        elif t == "is_complete_request":
            self.out.reply_local(channel, msg, "is_complete_reply", replies.is_complete(c.get("code", "")))

        # ------------------------------------------------------------------------------------------- execute

    async def _execute(self, channel: str, msg: Message) -> None:
        code = str(msg.content.get("code", ""))
        magics, rest = split_cell(code)
        self.history.append(msg.frames[4])
        remote = self.remote
        if magics:
            self.out.busy(msg.header)
            if not msg.content.get("silent"):  # as ipykernel: the cell as sent, then its outputs
                self.out.execute_input(msg, code)
            try:
                now = datetime.fromtimestamp(self.status.clock.time(), timezone.utc)
                cmd = parse_magics(magics, self.requests.policy_view(), now)
                self.requests.admit(cmd.request)
            except (GpuMagicError, GpuPolicyError) as exc:  # the %gpu line, or the policy itself, is wrong
                self.out.fail(channel, msg, exc)
                return
            text = await apply_command(cmd, remote)
            if text:
                self.out.stream(msg.header, text + "\n")
            if not rest.strip():
                self.out.execute_ok(channel, msg)
                if remote.link is not None:
                    asyncio.ensure_future(remote.continue_count())
                return
            msg = Message(self.out.session.resign(msg.idents, msg.frames, {**msg.content, "code": rest}))
        if remote.link is not None:
            remote.forward(channel, msg)
            return
        if msg.content.get("silent") and not remote.launch:
            # Setup code from a frontend (e.g. a silent %config) must not start a GPU kernel.
            self.requests.deferred_silent.append(str(msg.content.get("code", "")))
            self.out.reply_local(
                channel,
                msg,
                "execute_reply",
                {
                    "status": "ok",
                    "execution_count": self.out.exec_count,
                    "user_expressions": {},
                    "payload": [],
                },
            )
            return
        if not magics:
            self.out.busy(msg.header)
        remote.submit(channel, msg)

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
        if self.remote.launch is not None:
            await self.remote.cancel_launch("Interrupted: the GPU kernel start was cancelled.")
            self.out.reply(channel, msg, "interrupt_reply", {"status": "ok"})
        elif self.remote.link is not None:
            self.remote.forward(channel, msg)
        else:
            self.out.reply(channel, msg, "interrupt_reply", {"status": "ok"})

    async def _shutdown_request(self, channel: str, msg: Message) -> None:
        restart = bool(msg.content.get("restart"))
        await self.remote.teardown()
        self.out.reply(channel, msg, "shutdown_reply", {"status": "ok", "restart": restart})
        self.out.publish("status", {"execution_state": "dead"}, msg.header)
        if not restart:
            self.statusch.drop_file()
        await asyncio.sleep(0.05)  # let the reply leave before the sockets close
        self._stopping.set()

    async def shutdown(self, why: str) -> None:
        if self._stopping.is_set():
            return
        log.info("shutting down: %s", why)
        with contextlib.suppress(Exception):
            await self.remote.teardown()
        self.statusch.drop_file()
        self._stopping.set()

    # -------------------------------------------------------------------------------------- status comm
    def _is_status_comm(self, msg: Message) -> bool:
        return self.statusch.is_ours(msg.content)

    async def _status_comm(self, msg: Message) -> None:
        c = msg.content
        comm_id = str(c.get("comm_id"))
        self.out.busy(msg.header)
        if msg.msg_type == "comm_open":
            self.statusch.open(comm_id, msg.header)
        elif msg.msg_type == "comm_close":
            self.statusch.close(comm_id)
        else:
            data = c.get("data")
            await self._comm_action(comm_id, data if isinstance(data, dict) else {}, msg)
        self.out.idle(msg.header)

    async def _comm_action(self, comm_id: str, data: dict[str, Any], msg: Message) -> None:
        action = data.get("action")
        if action == "refresh":
            self.statusch.send(comm_id, dict(self.status.snapshot()), msg.header)
        elif action == "release":
            await self.remote.release(ReleaseReason.USER, "on request")
        elif action == "prestart":  # the user started typing: no answer, whatever the rule says
            cell = data.get("cell")  # absent (older clients): not a code edit, as before the field existed
            allowed = [c.value for c in PrestartCell]  # a list: the client's value may be unhashable
            if cell is not None and cell not in allowed:
                why = f"prestart: cell must be one of {allowed}, not {repr(cell)[:60]}"
                self.statusch.error(comm_id, why, msg.header)
                return
            await self.remote.prestart(code_cell=cell == PrestartCell.CODE)
        elif action == "request":
            try:
                cmd = parse_magics([f"%gpu {data.get('options', '')}"], self.requests.policy_view())
                if cmd.verbs:
                    raise MagicError("only GPU request options are accepted here")
                self.requests.admit(cmd.request)
            except (GpuMagicError, GpuPolicyError) as exc:
                self.statusch.error(comm_id, str(exc), msg.header)
                return
            await apply_command(cmd, self.remote)
        else:
            self.statusch.error(comm_id, f"unknown action {action!r}", msg.header)

    async def _comm_info(self, channel: str, msg: Message) -> None:
        target = msg.content.get("target_name")
        comms: dict[str, Any] = self.statusch.comm_info(target)
        link = self.remote.link
        if link is not None:
            with contextlib.suppress(Exception):
                reply, _ = await link.request("comm_info_request", dict(msg.content), timeout=10.0)
                comms.update(reply.content.get("comms", {}))
        self.out.reply_local(channel, msg, "comm_info_reply", {"status": "ok", "comms": comms})
