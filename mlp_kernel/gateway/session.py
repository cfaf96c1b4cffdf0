"""RemoteSession: the life of the notebook's remote GPU kernels, one after another, while the gateway runs.

One job: own the remote kernel while there is one, and the way to the next one. It holds the link, the launch
under way, the requests waiting for a kernel and those the remote kernel has not answered; it forwards
requests, follows replies (to know when a cell ends), renews the kernel's lease, watches for the kernel's
exit, releases it (asked, idle, to move, on shutdown) and starts the next one for a waiting cell. Its states
are ``KernelState``; every change goes through ``StatusChannel.move`` (the transition table of
docs/status-comm.md), which publishes the status. The router (``kernel.py``) decides *what* a message is;
this decides what happens to the kernel because of it.

Pre-start (``release.prestart``, ``placement/prestart.py``): the status comm's ``prestart`` action, sent
by the extension when the user starts typing into a released notebook, starts the next kernel before its cell
(``prestart``) if the pure rule allows: the launch a cell would make, with no cell. The first cell finds it
running (or waits for it, adopting the launch); unused for ``hold`` it is dropped without a snapshot (nothing
ran: the saved variables are still the ones to restore); then one more pre-start on a code edit, and none
after that until a cell ran.
A notebook that never had a GPU kernel (``cpu_only``) is pre-started only when the action says code is being
typed (``cell: "code"``) and the policy's ``release.prestart.first`` allows: its kernel starts as a first
cell's would (the session's ``%gpu`` choices so far), with nothing to restore, and unused it is dropped back
to ``cpu_only`` (nothing was released, nothing saved).

Time comes from an injected ``Clock`` (``mlp_kernel.clock``): the idle timer and lease renewal are tested on
a manual clock, not by sleeping through real periods.

Threads: ``track`` (via the router's ``after_forward``) and ``on_remote_reply`` run on the pump's I/O thread
and only update plain state; everything else runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timezone

from ..backends.base import ExitInfo, GatewayBackend, summary
from ..clock import Clock
from ..placement.prestart import FIRST_STATES, Prestart, prestart_decision
from ..placement.types import Action, Decision
from ..placement.units import format_duration
from ..protocol import EventKind, ExitReason, KernelState, ReleaseReason
from .errors import GpuError, GpuKernelLost, GpuStartError
from .launch import Launch, LaunchContext
from .outbox import Outbox, sentences
from .relay import RemoteLink
from .requests import RequestState
from .status import GatewayStatus
from .status_comm import StatusChannel
from .wire import DELIM, Message, load_dict

log = logging.getLogger("mlp_kernel.gateway")

LEASE_RENEW_S = 60.0  # at most; a third of the backends' default 5 min lease
STATUS_REFRESH_S = 30.0  # a running kernel's snapshot is re-sent this often (cost, countdowns)


class RemoteSession:
    def __init__(
        self,
        ctx: LaunchContext,
        outbox: Outbox,
    ) -> None:
        self.ctx = ctx
        self.requests: RequestState = ctx.requests
        self.backend: GatewayBackend = ctx.backend
        self.pump = ctx.pump
        self.status: GatewayStatus = ctx.status
        self.statusch: StatusChannel = ctx.statusch
        self.outbox = outbox
        self.clock: Clock = ctx.clock
        self.link: RemoteLink | None = None
        self.launch: Launch | None = None
        self.pending: list[tuple[str, Message]] = []  # (channel, request) waiting for a remote kernel
        self.inflight: dict[str, tuple[str, Message]] = {}  # msg_id -> (channel, request) sent to the remote
        self.releasing = False
        self.release_note: str | None = None
        self._exit_watch: asyncio.Task[None] | None = None
        self._lease: asyncio.Task[None] | None = None
        self._busy_since: float | None = None
        self._teardown_task: asyncio.Future[None] | None = None
        self._consume_pending = False  # its restored snapshot is deleted once a cell uses it
        self._prestart_first = False  # the last pre-start was the notebook's first GPU kernel (from cpu_only)
        self._rearm_on_drop = False  # the last pre-start was the first since a cell ran: unused, it re-arms
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def prestarted_at(self) -> float | None:
        """When the connected kernel was pre-started (None: none, or a cell has used it); in the status, whose
        idle deadline is then the hold's."""
        return self.status.prestart_since

    @prestarted_at.setter
    def prestarted_at(self, at: float | None) -> None:
        self.status.prestart_since = at

    @property
    def active(self) -> bool:
        """A remote kernel runs or is being started."""
        return self.link is not None or self.launch is not None

    def touch(self) -> None:
        """Something happened: the idle timer starts again."""
        self.status.last_activity = self.clock.time()

    # ------------------------------------------------------------------------------------ requests
    def submit(self, channel: str, msg: Message) -> None:
        """A request that needs a remote kernel while none is connected: it waits for the one being started,
        or starts one (after a release under way, which then starts it)."""
        self.outbox.answered.add(msg.msg_id)  # the kernel being started answers it, or launch_done fails it
        if msg.msg_type == "execute_request":
            self.status.cell_submitted(self.clock.time())
            self.status.prestart_ran, self.status.prestart_second = True, False
            if self.launch is not None and self.launch.prestart:  # it waits for the pre-start, as its own
                self.launch.adopt(msg)
                self.status.prestart_holding = False
        self.pending.append((channel, msg))
        if self.launch is None and not self.releasing:
            self._launch_pending()

    def forward(self, channel: str, msg: Message) -> None:
        """Send a request to the connected remote kernel, which answers it."""
        assert self.link is not None
        self.outbox.hand_over(msg)
        self.track(channel, msg)
        self.link.send(channel, msg.raw())

    def stdin(self, frames: list[bytes]) -> None:
        if self.link is not None:
            self.touch()
            self.link.send("stdin", frames)

    def track(self, channel: str, msg: Message) -> None:
        """A request goes to the remote kernel: remember it until its reply; a cell makes the kernel busy."""
        if msg.msg_type.endswith("_request"):
            self.inflight[msg.msg_id] = (channel, msg)
            if msg.msg_type == "execute_request" and (self.prestarted_at or not self.status.prestart_ran):
                self._cell_ran(msg)
            if msg.msg_type == "execute_request" and not self.status.busy:
                self.status.cell_submitted(self.clock.time())
                self.status.busy = True
                self._busy_since = self.clock.time()
        self.touch()

    def _cell_ran(self, msg: Message) -> None:
        """A cell goes to the remote kernel while a pre-start matters: another pre-start may follow its
        release, and a pre-started kernel has been used (a frontend's silent request is not a cell)."""
        if msg.content.get("silent"):
            return
        self.status.prestart_ran, self.status.prestart_second = True, False
        if self.prestarted_at is not None:  # the pre-started kernel's first cell: the guess paid off
            self.prestarted_at = None
            self.status.prestart_holding = False
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._prestart_used)

    def on_remote_reply(self, frames: list[bytes]) -> bool:
        """I/O thread: a reply went from the remote kernel to a client: track in-flight requests and
        activity. True when the last running cell ended (the pump then asks the loop to publish status)."""
        try:
            i = frames.index(DELIM)
            parent_id = str(load_dict(frames[i + 3], "parent header").get("msg_id"))
        except (ValueError, IndexError):  # incl. Malformed: relayed anyway, the client judges it
            return False
        entry = self.inflight.pop(parent_id, None)
        self.touch()
        if entry is None or entry[1].msg_type != "execute_request":
            return False
        with contextlib.suppress(ValueError, IndexError):
            count = load_dict(frames[i + 5], "content").get("execution_count")
            if isinstance(count, int) and count > 0:
                self.outbox.exec_count = count
        if any(m.msg_type == "execute_request" for _, m in list(self.inflight.values())):
            return False
        self._end_busy()
        return True

    def _end_busy(self) -> None:
        s = self.status
        if s.busy and self._busy_since:
            s.gpu_seconds_busy += (self.clock.time() - self._busy_since) * max(1, s.gpu_count)
        s.busy = False
        s.idle_since = self.clock.time()
        self._busy_since = None
        self.touch()

    async def continue_count(self) -> None:
        """After a cell the gateway answered itself: the remote kernel's next cell continues its count."""
        if self.link is not None:
            with contextlib.suppress(Exception):
                await self.link.execute_silently(
                    f"get_ipython().execution_count = {int(self.outbox.exec_count) + 1}"
                )

    # ------------------------------------------------------------------------------------- pre-start
    async def prestart(self, code_cell: bool = False) -> None:
        """The user started working on a cell (the extension's ``prestart`` action; ``code_cell``: the source
        of a code cell was edited): start the GPU kernel now, as the next cell would, if the pre-start rule
        allows. Never an error: a refusal is a debug line (and ``%gpu status``'s pre-start line); a kernel
        running or starting already makes it a no-op."""
        rule = self.requests.prestart
        if rule is None or self.active or self.releasing or self.pending:
            log.debug("pre-start ignored: %s", "off" if rule is None else "a GPU kernel runs or is starting")
            return
        self._loop = asyncio.get_running_loop()
        s = self.status
        first = s.state in FIRST_STATES  # never had a GPU kernel: only typing code may start one
        ok, why = prestart_decision(
            rule,
            state=s.state,
            ran_since_last_prestart=s.prestart_ran,
            member_public=False,
            admitted_now=True,
            paid=False,
            code_cell=code_cell,
            second_chance=s.prestart_second,
        )
        decision = None
        if ok:  # worth asking placement where the next cell's kernel would go now (a first cell's, if first)
            # one pre-start per cell that ran, whatever placement answers; the first one, dropped unused,
            # gives one more to a code edit (prestart.py)
            self._rearm_on_drop = s.prestart_ran
            s.prestart_ran = s.prestart_second = False
            decision, why = await self._prestart_placement(rule, code_cell)
            why = f"first kernel: {why}" if first else why
        if self.active or self.releasing or self.pending:  # a cell came while placement ran: it launches
            return
        self._prestart_first = first
        s.prestart_note = why
        if decision is None:
            log.debug("%s", why)
            self.statusch.publish()
            return
        log.info("%s", why)
        s.prestart_holding = True
        self.launch = Launch(self.ctx, self, first=None, decision=decision, prestart=True, first_kernel=first)
        self.launch.start()

    async def _prestart_placement(self, rule: Prestart, code_cell: bool) -> tuple[Decision | None, str]:
        """Placement's answer for the notebook's request now, if the pre-start rule accepts it (else None),
        and the rule's line."""
        try:
            d = await self.requests.decide(0.0, self.backend, self.clock.time())
        except GpuError as exc:  # a policy that cannot be used: the cell will say so when it runs
            return None, f"no pre-start: {summary(str(exc))}"
        ok, why = prestart_decision(
            rule,
            state=self.status.state,
            ran_since_last_prestart=True,
            member_public=d.public,
            admitted_now=d.action is Action.RUN,
            paid=d.price_per_hour > 0,
            code_cell=code_cell,
        )
        if ok and d.action not in (Action.RUN, Action.QUEUE):
            ok, why = False, f"no pre-start: {d.summary or 'placement rejects the request'}"
        return (d if ok else None), why

    def _prestart_used(self) -> None:
        """Loop: a cell uses the pre-started kernel: its restored snapshot has served (deleted, as after any
        restore), and the idle limit applies from now on."""
        link = self.link
        if self._consume_pending and link is not None:
            self._consume_pending = False
            asyncio.ensure_future(self.requests.carry.consume(link, self.status.public))
        self.statusch.publish_soon()

    async def _drop_prestarted(self, reason: ReleaseReason, why: str) -> str:
        """Give back a pre-started kernel no cell used, without a snapshot: nothing ran, so the saved
        variables are still exactly the ones the next kernel restores. The caller holds ``releasing``."""
        link, s = self.link, self.status
        assert link is not None
        self._unlink()
        await link.close()
        await self.backend.release(link.remote)
        await self._accrue(link, final=True)
        self.requests.clear_record()
        s.prestart_second = self._rearm_on_drop
        held = format_duration(self.clock.time() - (s.since or self.clock.time()))
        if self._prestart_first:
            return self._first_dropped(why, held)
        s.prestart_note = f"dropped {why}: pre-started on {s.member}/{s.flavor} {held} ago, no cell used it"
        message = (
            f"Pre-started GPU kernel given back {why} (no cell used it; held {held} on "
            f"{s.member}/{s.flavor}); the saved variables are kept for the next cell."
        )
        self._mark_released(reason, message)
        self.statusch.event(EventKind.PRESTART_DROPPED, message)
        return message

    def _first_dropped(self, why: str, held: str) -> str:
        """An unused first kernel was given back: ``cpu_only`` again (``_back_to_cpu_only``)."""
        s = self.status
        where = f"{s.member}/{s.flavor}"
        s.prestart_note = f"dropped {why}: first kernel, pre-started on {where} {held} ago, no cell used it"
        message = (
            f"Pre-started first GPU kernel given back {why} (no cell used it; held {held} on {where}); "
            "the next code cell starts a GPU kernel."
        )
        self._back_to_cpu_only(message)
        self.statusch.event(EventKind.PRESTART_DROPPED, message)
        return message

    def _back_to_cpu_only(self, message: str) -> None:
        """An unused first kernel is gone (dropped, or it died): the notebook is ``cpu_only`` again, as if it
        had never started (nothing was released from a cell's point of view, nothing saved: no
        ``last_release``)."""
        s = self.status
        s.cost_before = s.cost_so_far(self.clock.time())
        s.since, s.busy = None, False
        self.statusch.move(KernelState.CPU_ONLY, message, phase=None, queue=None)

    # -------------------------------------------------------------------------------------- launching
    def _launch_pending(self) -> None:
        first = next((m for _, m in self.pending if m.msg_type == "execute_request"), None)
        self.launch = Launch(self.ctx, self, first=first)
        self.launch.start()

    async def cancel_launch(self, reason: str) -> None:
        if self.launch is not None:
            await self.launch.cancel(reason)

    # LaunchObserver
    def next_execution_count(self) -> int:
        return self.outbox.exec_count + 1

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
        self.status.prestart_holding = launch.prestart and link is not None
        if launch.prestart and link is not None:  # no cell came while it started: it waits for one (the hold)
            self.prestarted_at = self.clock.time()
            where = f"{self.status.member}/{self.status.flavor}"
            self.status.prestart_note = (
                f"first kernel pre-started on {where} when you started typing code"
                if launch.first_kernel
                else f"pre-started on {where} when you started typing"
            )
        if link is None:
            for channel, msg in pending:
                self.outbox.fail(channel, msg, error or GpuStartError("The GPU kernel did not start."))
            self.statusch.publish()
            return
        self.link = link
        self._exit_watch = asyncio.ensure_future(self._watch_exit(link))
        if self.backend.holds_lease(link.remote):
            self._lease = asyncio.ensure_future(self._renew_lease(link))
        self.touch()
        self._consume_pending = launch.snapshot_kept
        # Published before the pending cells go: their replies reach the client through the pump's own thread,
        # without this loop, so a client that reads the status (file or comm) on a reply must already find
        # the kernel running and what it sees of the files (the fresh-clone CI read the file in between).
        self.statusch.publish()
        for channel, msg in pending:
            self.forward(channel, msg)
        if self._consume_pending and self.prestarted_at is None:  # a cell adopted the pre-start late
            self._prestart_used()
        self.pump.fast = True  # after the pending requests: nothing may overtake them
        if pending:
            self.statusch.publish()  # and busy with them

    # ------------------------------------------------------------------------------- while it runs
    async def _renew_lease(self, link: RemoteLink) -> None:
        """Renew the remote kernel's lease while it is ours, so `mlp-kernel gc` leaves it alone: at once
        (a long start may have used up the lease), then every third of the backend's lease duration."""
        every = self.backend.renew_interval_s(link.remote, LEASE_RENEW_S)
        interval = 0.0
        while self.link is link:
            await self.clock.sleep(interval)
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
        unused_first = self._prestart_first and self.prestarted_at is not None  # never ran a cell
        self.pump.fast = False
        await self.pump.flush()  # requests relayed a moment ago are in ``inflight`` now: answer them too
        link = self._unlink()
        if link is not None:
            await link.close()
            with contextlib.suppress(Exception):
                await self.backend.release(link.remote)
            await self._accrue(link, final=True)
        inflight, self.inflight = self.inflight, {}
        line = summary(info.message)
        for channel, msg in list(inflight.values()):  # the cell's error says it, once (no stream line too)
            self.outbox.fail(channel, msg, GpuKernelLost(info.message))
        self._end_busy()
        self.statusch.publish_soon()
        self.requests.clear_record()
        reason = ExitReason.of(info.reason)
        if unused_first:  # nothing ran and nothing was saved: the notebook never had a GPU kernel in use
            message = (  # no "variables lost": none were there yet
                f"The pre-started first GPU kernel ended before any cell used it ({reason.value}); nothing "
                "was lost. The next code cell starts a GPU kernel."
            )
            self._back_to_cpu_only(message)
            self.statusch.event(reason.event_kind(), message)
            return
        self._mark_released(reason, line)
        self.statusch.event(reason.event_kind(), line)

    def _unlink(self) -> RemoteLink | None:
        """Forget the connected kernel (the caller closes and releases it): no more fast relaying to it,
        no lease renewal, no exit watch, and its busy messages will never come."""
        link, self.link = self.link, None
        self.prestarted_at, self._consume_pending = None, False  # an unused pre-start's snapshot stays
        self.status.prestart_holding = False
        self.pump.forget_announced()
        for task in (self._exit_watch, self._lease):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        self._exit_watch = self._lease = None
        return link

    async def idle_loop(self) -> None:
        """Release the kernel once it has been idle for the release rule's limit; keep the published
        status fresh meanwhile (cost and countdowns, for clients without timers of their own)."""
        while True:
            timeout = self.status.idle_limit()
            await self.clock.sleep(min(5.0, max(0.2, (timeout or 60) / 10)))
            timeout = self.status.idle_limit()  # the rule may have changed while asleep
            s = self.status
            now = self.clock.time()
            if s.state == KernelState.RUNNING and self.link is not None:
                await self._accrue(self.link)  # a public kernel's spend, every budgets.record_every
            if s.state == KernelState.RUNNING and now - self.statusch.last_publish >= STATUS_REFRESH_S:
                self.statusch.publish()
            hold = self.requests.prestart
            if self.prestarted_at is not None and self.link is not None and not self.releasing:
                if hold is not None and now - self.prestarted_at >= hold.hold_s:  # a guess that did not pay
                    await self.release(ReleaseReason.UNUSED, f"after {format_duration(hold.hold_s)} unused")
                continue  # until a cell uses it, the hold applies, not the idle limit
            if self.link is None or self.releasing or timeout is None or self.inflight:
                continue
            if now - s.last_activity < timeout:
                continue
            await self.release(ReleaseReason.IDLE, f"after {format_duration(now - s.last_activity)} idle")

    # -------------------------------------------------------------------------------------- releasing
    async def release(self, reason: ReleaseReason, why: str) -> str:
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
            used = reason == ReleaseReason.UNUSED and self.prestarted_at is None  # a cell just came
            if used or (reason in (ReleaseReason.IDLE, ReleaseReason.UNUSED) and self.inflight):
                self.pump.fast = self.link is link  # a cell started just now: not idle after all
                return "A cell started; the GPU kernel was kept."
            if self.prestarted_at is not None:  # pre-started, unused: nothing to save
                return await self._drop_prestarted(reason, why)
            self.statusch.move(KernelState.RELEASING, f"Releasing the GPU {why}")
            ok, note = await self.requests.before_release(self.status, link, reason)
            if not ok and reason == ReleaseReason.IDLE:
                # Never drop a user's state unasked: keep the kernel, try again after another idle period.
                self.touch()
                kept = f"{note} The GPU kernel was kept."
                self.pump.fast = self.link is link
                self.statusch.event(EventKind.ERROR, kept)
                self.statusch.move(KernelState.RUNNING, kept)
                return kept
            self._unlink()
            await link.close()
            await self.backend.release(link.remote)
            await self._accrue(link, final=True)
            self.requests.clear_record()
            s, now = self.status, self.clock.time()
            held = now - (s.since or now)
            cost = (
                f", ${s.kernel_cost(now):.2f}; ${s.cost_so_far(now):.2f} in this notebook"
                if s.price_per_hour
                else ""
            )
            message = f"GPU released {why} (held {format_duration(held)} on {s.member}/{s.flavor}{cost})."
            if note:
                message = sentences(message, note)
            self._mark_released(reason, message)
            self.statusch.event(EventKind.RELEASED, message)
            return message
        finally:
            self.releasing = False
            if self.pending and self.link is None and self.launch is None:
                self._launch_pending()  # cells run while the GPU was being released: a new kernel for them

    async def _accrue(self, link: RemoteLink, final: bool = False) -> None:
        """The public kernel's spend into the budget ledger (``budget.py``; never raises)."""
        policy = None if self.requests.policy_error else self.requests.policy
        now = self.clock.time()
        await self.requests.budget.accrue(policy, self.status, link.remote.kernel_id, now, final)

    def _mark_released(self, reason: ReleaseReason | ExitReason, message: str) -> None:
        s = self.status
        s.cost_before = s.cost_so_far(self.clock.time())
        s.since, s.busy = None, False
        self.statusch.move(KernelState.RELEASED, phase=None, queue=None, publish=False)
        s.last_release = {
            "reason": reason,
            "at": datetime.fromtimestamp(self.clock.time(), timezone.utc).isoformat(),
            "idle_s": s.idle_limit() if reason == ReleaseReason.IDLE else None,
            "message": message,
        }
        s.message = sentences(message, "The next cell starts a new GPU kernel.")
        self.release_note = message
        self.statusch.publish()

    async def teardown(self) -> None:
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
        link = self._unlink()
        if link is not None:
            with contextlib.suppress(Exception):
                # the reply is all it waits for: ipykernel's ``idle`` after a shutdown_reply comes only
                # sometimes (its loop stops), and waiting for it cost the shutdown 3 s whenever it did not
                await asyncio.wait_for(
                    link.request("shutdown_request", {"restart": False}, "control", 2.0, output=False), 3.0
                )
            await link.close()
            await self.backend.release(link.remote)
            await self._accrue(link, final=True)
            self.requests.clear_record()
        await self.requests.on_shutdown()
        self.statusch.move(KernelState.CPU_ONLY, "Shut down")
