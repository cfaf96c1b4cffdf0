"""One launch of a remote GPU kernel: place, start through the backend, show progress, connect, bootstrap.

Runs as its own task so the gateway keeps serving the notebook (``%gpu``, interrupts, status) meanwhile.
While the request waits in a private queue, placement is asked again every few seconds with the time waited
so far; when it answers ``burst`` the queued launch is cancelled (the backend deletes what it created) and a
new one starts on the public member. Interrupting cancels the whole launch and leaves nothing behind.

A pre-start (``release.prestart``, the session's ``prestart``) is a launch with no cell: it comes with the
decision the pre-start rule accepted, never moves to a burst (a pre-start never pays), says ``prestarted``
instead of ``started`` and leaves the restored snapshot in place until a cell uses the kernel. The first cell
that arrives meanwhile ``adopt``s it: from then on it is that cell's launch, with its progress line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..backends.base import GatewayBackend, LaunchError, LaunchEvent, LaunchSpec, Phase, RemoteKernel, summary
from ..clock import SYSTEM, Clock
from ..placement.types import Action, Decision
from ..placement.units import format_duration
from ..protocol import EventKind, KernelState, QueueInfo
from .errors import GpuError, GpuPlacementRejected, GpuStartCancelled, GpuStartError, GpuStartTimeout
from .launch_timing import LaunchTiming
from .outbox import sentences
from .pump import Pump
from .relay import RemoteLink
from .requests import RequestState
from .status import GatewayStatus
from .status_comm import Publish, StatusChannel
from .wire import Session

if TYPE_CHECKING:
    from .wire import Message

log = logging.getLogger("mlp_kernel.gateway")


CONNECT_INFO = """
def _mlp_kernel_connect_info(info, name):
    def connect_info(line=""):
        \"\"\"Print information for connecting other clients to this kernel (the notebook's GPU (auto)
        kernel: the gateway, which relays to the GPU kernel and keeps track of its use).\"\"\"
        print(info + "\\n")
        print(
            "Paste the above JSON into a file, and connect with:\\n"
            "    $> jupyter <app> --existing <file>\\n"
            "or, if you are local, you can connect with just:\\n"
            f"    $> jupyter <app> --existing {name}\\n"
            "or even just:\\n"
            "    $> jupyter <app> --existing\\n"
            "if this is the most recent Jupyter kernel you have started."
        )

    get_ipython().register_magic_function(connect_info, "line", "connect_info")

try:
    _mlp_kernel_connect_info(%r, %r)
except Exception:  # an IPython without register_magic_function: keep its own, start anyway
    pass
del _mlp_kernel_connect_info
"""


def connect_info_code(connection: dict[str, Any], connection_file: str) -> str:
    """Code for the remote kernel: ``%connect_info`` shows the connection the notebook uses, the gateway's.

    ipykernel's own shows the remote kernel's file: ipc sockets and a path under the gateway's temp
    directory (on Kubernetes, inside the pod). ``jupyter console --existing`` pointed at it would bypass the
    gateway, its idle tracking and its release. Printed like ipykernel prints it (the file's JSON; the
    name alone when the file is in the Jupyter runtime directory).
    """
    name = connection_file or "<file>"
    if connection_file:
        with contextlib.suppress(Exception):
            from jupyter_core.paths import jupyter_runtime_dir

            if Path(connection_file).parent == Path(jupyter_runtime_dir()).resolve():
                name = Path(connection_file).name
    info = json.dumps(connection, indent=2, sort_keys=True)
    return CONNECT_INFO % (info, name)


#: what a launch ends with when it gives up (any ``GpuError`` a step raised passes through unchanged)
LaunchFailed = GpuStartError


@dataclass(frozen=True)
class LaunchContext:
    """What every launch of one gateway uses: the request state, the backend, the pump and session its link
    relays through, the client's connection (the remote kernel gets its key), and where status goes."""

    requests: RequestState
    backend: GatewayBackend
    pump: Pump
    session: Session
    connection: dict[str, Any]
    connection_file: str
    status: GatewayStatus
    statusch: StatusChannel
    publish: Publish
    clock: Clock = SYSTEM  # every wait and timestamp of the gateway (tests: a manual clock)


async def _wait_or_sleep(fut: asyncio.Future[Any], seconds: float, clock: Clock) -> None:
    """Wait until ``fut`` is done or ``seconds`` of ``clock`` time have passed, whichever comes first."""
    tick = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({fut, tick}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        tick.cancel()


class LaunchObserver(Protocol):
    """How a launch reports back to the gateway that started it (``RemoteSession`` implements it)."""

    def launch_done(self, launch: Launch, link: RemoteLink | None, error: GpuError | None) -> None:
        """Called once, always, when the launch connected ``link`` or gave up with ``error``."""

    def next_execution_count(self) -> int:
        """The execution count the new kernel continues from (read when it first answers)."""

    def take_release_note(self) -> str | None:
        """The last release's line, shown once before the new start (then forgotten)."""


class Progress:
    """Start-up progress in the cell that triggered the launch: one line, updated in place (``display_id``).

    What a notebook keeps is what the user wants to read later, not the plumbing: while the kernel starts, the
    line says what happens now (placed, queued with its position, pulling, ...); once it runs, the line is
    collapsed to where it runs and how long the start took; on a failure or cancel it is emptied, because the
    cell's error says it (once) and the notification too. The last release's note, when there is one, stays
    as a line above it: it explains why a new kernel starts.
    """

    def __init__(self, publish: Publish, parent: dict[str, Any] | None) -> None:
        self.publish = publish
        self.parent = parent
        self.display_id = f"mlp-gpu-progress-{parent['msg_id']}" if parent else ""
        self.note = ""
        self.line = ""
        self.shown = False

    def set(self, key: str, text: str) -> None:
        """Show ``text`` as the current step (``key`` "note": as the note above it)."""
        if key == "note":
            self.note = text
        else:
            self.line = text
        self._show()

    def clear(self) -> None:
        """The start failed or was cancelled: keep only the note (the error is the cell's own output)."""
        self.line = ""
        if self.shown:
            self._show()

    def _show(self) -> None:
        if not self.parent:
            return
        body = "\n".join(f"[GPU (auto)] {t}" for t in (self.note, self.line) if t)
        content = {"data": {"text/plain": body}, "metadata": {}, "transient": {"display_id": self.display_id}}
        self.publish("update_display_data" if self.shown else "display_data", content, self.parent)
        self.shown = True


class Launch:
    """One attempt to give the notebook a GPU kernel: place, start (following the backend's events, moving
    to a burst when placement says so), connect and bootstrap it; it reports to its observer once."""

    def __init__(
        self,
        ctx: LaunchContext,
        observer: LaunchObserver,
        first: Message | None,
        decision: Decision | None = None,
        prestart: bool = False,
        first_kernel: bool = False,
    ) -> None:
        self.ctx = ctx
        self.observer = observer
        self.decision = decision  # already decided (a pre-start): placement is not asked again
        self.prestart = prestart  # no cell yet: no burst, no ``started`` event, the snapshot kept
        self.first_kernel = first_kernel  # a pre-start of the notebook's first GPU kernel (typing code)
        self.snapshot_kept = False  # restored without deleting the snapshot: the session deletes it on use
        self.progress = Progress(ctx.publish, first.header if first else None)
        self.cancel_reason = "Cancelled."
        self.task: asyncio.Task[None] | None = None
        self.timing = LaunchTiming()

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._run())

    def adopt(self, first: Message) -> None:
        """A cell arrived while this pre-start runs: it waits for this kernel as for its own cold start (its
        progress line from here on) and the launch is an ordinary one again."""
        if self.prestart:
            self.prestart = False
            self.progress = Progress(self.ctx.publish, first.header)

    async def cancel(self, reason: str) -> None:
        self.cancel_reason = reason
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        """The launch task. Whatever goes wrong ends in ``launch_done``: a launch task that ended without
        it would leave the gateway's launch set, and every later cell queued behind it for good."""
        try:
            await self._attempt()
        except Exception as exc:
            log.exception("the GPU kernel launch failed unexpectedly")
            err = LaunchFailed(f"Could not start a GPU kernel: {type(exc).__name__}: {exc}")
            with contextlib.suppress(Exception):
                self.observer.launch_done(self, None, err)

    async def _attempt(self) -> None:
        k = self.ctx
        timeout = k.requests.launch_timeout_s
        try:
            link = await asyncio.wait_for(self._place_and_start(), timeout)
        except asyncio.CancelledError:
            self.progress.clear()
            k.statusch.move(KernelState.CPU_ONLY, self.cancel_reason, phase=None, queue=None, publish=False)
            self.observer.launch_done(self, None, GpuStartCancelled(self.cancel_reason))
            return
        except asyncio.TimeoutError:
            err = GpuStartTimeout(
                f"No GPU kernel started within {format_duration(timeout)} (the policy's launch_timeout). "
                "Run %gpu explain for the placement, or ask for another GPU (%gpu tier=..., %gpu burst=on)."
            )
            self._failed(err)
            return
        except GpuError as exc:
            self._failed(exc)
            return
        except LaunchError as exc:
            self._failed(LaunchFailed(str(exc)))
            return
        except Exception as exc:  # an unexpected backend fault: say so, keep the kernel usable
            log.warning("the GPU kernel launch failed unexpectedly", exc_info=True)
            self._failed(LaunchFailed(f"Could not start a GPU kernel: {type(exc).__name__}: {exc}"))
            return
        self.timing.report("warm pool" if link.remote.handle.get("warm_pool") else "started")
        self.observer.launch_done(self, link, None)

    def _failed(self, exc: GpuError) -> None:
        k = self.ctx
        line = summary(str(exc))
        self.progress.clear()
        k.statusch.move(KernelState.ERROR, line, phase=None, queue=None, publish=False)
        k.statusch.event(EventKind.ERROR, line)
        self.observer.launch_done(self, None, exc)

    async def _place_and_start(self) -> RemoteLink:
        k = self.ctx
        rs = k.requests
        note = self.observer.take_release_note()
        if note:
            self.progress.set("note", sentences(note, "Starting a new GPU kernel."))
        k.statusch.move(KernelState.PLACING, phase=None, publish=False)  # published with the decision
        decision = self.decision or await rs.decide(0.0, k.backend, k.clock.time())
        self._show_decision(decision)
        self.timing.mark("placement")
        if decision.action is Action.REJECT:
            raise GpuPlacementRejected(decision.summary or "No GPU may serve this request.")
        started = k.clock.time()
        while True:
            spec = LaunchSpec(
                kernel_id=rs.config.kernel_id,
                key=str(k.connection.get("key", "")),
                signature_scheme=k.connection.get("signature_scheme", "hmac-sha256"),
                decision=decision,
                request=rs.current(),
                user=rs.config.user,
                notebook=rs.config.notebook,
                team=rs.config.team,
            )
            events = k.backend.launch(spec)
            try:
                outcome = await self._follow(events, decision, started)
            finally:
                with contextlib.suppress(Exception):
                    await events.aclose()
            if isinstance(outcome, Decision):
                decision = outcome
                self._show_decision(decision)
                k.statusch.event(EventKind.BURST, decision.summary)
                continue
            self.timing.mark("backend")
            return await self._connect(outcome, decision, started)

    def _show_decision(self, d: Decision) -> None:
        k = self.ctx
        s = k.status
        s.decision = d
        s.member, s.flavor, s.gpu_model, s.gpu_count = d.member, d.flavor, d.gpu_model, d.gpu_count
        s.public, s.price_per_hour = d.public, d.price_per_hour
        s.budget = k.requests.budget.lines
        s.message = d.summary
        self.progress.set("placed", d.summary or f"{d.action.value}: {d.member}/{d.flavor}")
        k.statusch.publish()

    async def _follow(
        self, events: AsyncIterator[LaunchEvent], decision: Decision, started: float
    ) -> RemoteKernel | Decision:
        """Follow the backend's events until connected; return a new decision if placement moves us."""
        k = self.ctx
        queued_at: float | None = None
        it = events.__aiter__()
        nxt: asyncio.Future[LaunchEvent] | None = None
        try:
            while True:
                nxt = asyncio.ensure_future(it.__anext__())
                while not nxt.done():
                    if queued_at is None:
                        await asyncio.wait({nxt})
                        continue
                    await _wait_or_sleep(nxt, k.requests.config.reevaluate_s, k.clock)
                    if nxt.done():
                        continue
                    now = k.clock.time()
                    if self.prestart:  # a pre-start never moves to a burst: the cell decides that
                        continue
                    again = await k.requests.decide(now - queued_at, k.backend, now)
                    if again.action is Action.BURST and again.member != decision.member:
                        nxt.cancel()
                        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                            await nxt
                        return again
                try:
                    ev = nxt.result()
                except StopAsyncIteration:
                    raise LaunchFailed("The backend stopped before the GPU kernel was connected.") from None
                s = k.status
                self.progress.set(
                    ev.phase.value, f"{ev.message} ({format_duration(k.clock.time() - started)})"
                )
                if ev.phase is Phase.QUEUED:
                    queued_at = queued_at or k.clock.time()
                    queue: QueueInfo = {
                        "local_queue": ev.detail.get("local_queue"),
                        "position": ev.detail.get("position"),
                        "eta_s": ev.detail.get("eta_s"),
                        "reason": ev.detail.get("reason"),
                    }
                    k.statusch.move(KernelState.QUEUED, ev.message, phase=ev.phase, queue=queue)
                elif ev.phase is not Phase.CONNECTED:
                    k.statusch.move(KernelState.STARTING, ev.message, phase=ev.phase, queue=None)
                else:  # the state becomes running once the kernel has answered (``_connect``)
                    s.phase, s.message = ev.phase, ev.message
                    k.statusch.publish()
                if ev.phase is Phase.CONNECTED and ev.remote is not None:
                    return ev.remote
        finally:
            # Cancelled (interrupt, shutdown, timeout) while the backend's generator was inside __anext__:
            # cancel that step and let it finish, or the generator cannot be closed and what it created (an
            # admitted pod waiting for a node, its Secret and Lease) would stay until the gateway exits.
            if nxt is not None and not nxt.done():
                nxt.cancel()
                await asyncio.gather(nxt, return_exceptions=True)

    async def _connect(self, remote: RemoteKernel, decision: Decision, started: float) -> RemoteLink:
        k = self.ctx
        link = RemoteLink(k.pump, remote, k.session)
        k.requests.write_record(k.backend.handle_record(remote), remote)
        self.timing.mark("attach")
        exit_wait = asyncio.ensure_future(k.backend.wait_exit(remote))
        boot = asyncio.ensure_future(self._bootstrap(link))
        try:
            done, _ = await asyncio.wait({exit_wait, boot}, return_when=asyncio.FIRST_COMPLETED)
            if exit_wait in done:
                raise LaunchFailed(f"The GPU kernel stopped while starting: {exit_wait.result().message}")
            note = boot.result()
        except BaseException:
            for task in (exit_wait, boot):
                task.cancel()
            await asyncio.gather(exit_wait, boot, return_exceptions=True)  # nothing left unretrieved
            await link.close()
            await k.backend.release(remote)
            k.requests.clear_record()
            raise
        exit_wait.cancel()
        s = k.status
        s.since = k.clock.time()
        gpu = f"{decision.gpu_model} x{decision.gpu_count}" if decision.gpu_model else "no GPU"
        where = "public" if decision.public else "private"
        if remote.handle.get("warm_pool"):  # a claimed warm-pool kernel (issue 18 §3): why it was quick
            where += ", warm pool"
        running = (
            f"Running on {decision.member}/{decision.flavor} ({gpu}, {where}) at "
            f"${decision.price_per_hour:.2f}/h"
        )
        if self.prestart:
            running += (
                " (first kernel, pre-started when you started typing code)"
                if self.first_kernel
                else " (pre-started when you started typing)"
            )
        k.statusch.move(KernelState.RUNNING, running, phase=Phase.CONNECTED, queue=None, publish=False)
        self.progress.set(
            "end",
            f"{s.message}; ready in {format_duration(k.clock.time() - started)}."
            + (f" {note}" if note else ""),
        )
        k.statusch.event(EventKind.PRESTARTED if self.prestart else EventKind.STARTED, s.message)
        k.requests.budget.placed(decision, remote.kernel_id)
        self.timing.mark("running")  # the status, the progress line and the budget said it
        return link

    async def _bootstrap(self, link: RemoteLink) -> str:
        """Wait for the kernel's first answer, continue the execution count, restore saved variables.

        A claimed warm-pool kernel has answered already (the claim's reply): its bootstrap is sent and the
        restore goes right behind it instead of after its reply (the kernel runs them in that order), one
        round trip less on the first cell's path; the snapshot is used up only once the bootstrap said ok."""
        k = self.ctx
        timeout = k.requests.config.start_timeout_s
        first = asyncio.ensure_future(
            link.execute_silently(
                f"get_ipython().execution_count = {self.observer.next_execution_count()}\n"
                + connect_info_code(k.connection, k.connection_file),
                timeout=timeout,
            )
        )
        try:
            if link.remote.handle.get("warm_pool"):
                await asyncio.sleep(0)  # ``first`` ran up to its send: what follows queues behind it
            else:
                await self._bootstrapped(first)
            self.timing.mark("bootstrap")
            self.snapshot_kept = self.prestart  # read once: a cell may adopt the launch during the restore
            for code in k.requests.deferred_silent:
                with contextlib.suppress(Exception):
                    await link.execute_silently(code, timeout=timeout)
            note = await k.requests.after_connect(k.status, link, consume=False)
            await self._bootstrapped(first)
        finally:
            first.cancel()  # done by now unless the launch gave up (its reply is not awaited then)
        if not self.snapshot_kept:  # used once: the next release takes a new one
            await k.requests.carry.consume(link, k.status.public)
        self.timing.mark("after_connect")
        restored = k.requests.carry.restore_timing
        if restored is not None:
            self.timing.add("restore", restored[0])
            self.timing.add("in kernel", restored[1])
        return note

    async def _bootstrapped(self, first: asyncio.Future[Message]) -> None:
        """The bootstrap's reply (``_bootstrap``); raises when the kernel refused it."""
        reply = await first
        if reply.content.get("status") != "ok":
            raise LaunchFailed(f"The GPU kernel failed its first command: {reply.content.get('evalue')}")
