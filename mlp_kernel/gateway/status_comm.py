"""Where the gateway's status leaves the process: the ``mlp_kernel.status`` comms and the status file.

One job: turn the one ``GatewayStatus`` record into messages (docs/status-comm.md, ``mlp_kernel.protocol``)
for every open status comm, and into the status file the server extension reads for its fleet view. The
parts of the gateway that change the status (the launch, releases, the idle timer) call ``publish`` or
``event`` here; none of them builds a message or touches the file itself.

Publishing never fails the caller: it runs from every handler, and a status bug must not cost a cell its
reply. The file is removed for good on the way out (``drop_file``) and never written again afterwards, even
by a coalesced publish still pending on the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..protocol import COMM_TARGET, EventKind, KernelState, Phase, QueueInfo, StatusError, StatusEvent
from .status import GatewayStatus, write_status_file

log = logging.getLogger("mlp_kernel.gateway")

#: ``publish(msg_type, content, parent_header)`` on the client's iopub
Publish = Callable[[str, dict[str, Any], "dict[str, Any] | None"], None]
S = KernelState
#: The moves the gateway makes between states (docs/status-comm.md); any state may also end in ``cpu_only``
#: (the kernel shut down, or a start was cancelled). A move outside this table is a gateway bug: it is logged
#: as an error and made anyway (the status must follow what really happened); the tests check the moves a
#: live gateway publishes against this table.
TRANSITIONS: dict[KernelState, frozenset[KernelState]] = {
    S.CPU_ONLY: frozenset({S.PLACING}),
    S.PLACING: frozenset({S.QUEUED, S.STARTING, S.RUNNING, S.ERROR}),
    S.QUEUED: frozenset({S.QUEUED, S.STARTING, S.RUNNING, S.ERROR}),
    S.STARTING: frozenset({S.STARTING, S.QUEUED, S.RUNNING, S.ERROR}),  # QUEUED again: a burst elsewhere
    S.RUNNING: frozenset({S.RELEASING, S.RELEASED}),  # RELEASED at once: the kernel ended unasked
    S.RELEASING: frozenset({S.RELEASED, S.RUNNING}),  # RUNNING: kept, its variables could not be saved
    S.RELEASED: frozenset({S.PLACING}),
    S.ERROR: frozenset({S.PLACING}),
}
_KEEP: object = object()

#: how long ``publish_soon`` waits to coalesce a burst of changes (keeps file writes off the reply path)
COALESCE_S = 0.25


class StatusChannel:
    def __init__(self, status: GatewayStatus, publish: Publish, path: Path | None) -> None:
        self.status = status
        self._publish = publish
        self.path = path
        self.comms: set[str] = set()
        self.last_publish = 0.0
        self._file_done = False  # shut down: the status file is gone for good
        self._soon: asyncio.TimerHandle | None = None

    # -- comms --------------------------------------------------------------------------------------------
    def is_ours(self, content: dict[str, Any]) -> bool:
        """Whether a comm_open/comm_msg/comm_close is for a status comm (by target or by an open id)."""
        return content.get("target_name") == COMM_TARGET or content.get("comm_id") in self.comms

    def open(self, comm_id: str, parent: dict[str, Any] | None) -> None:
        self.comms.add(comm_id)
        self.send(comm_id, dict(self.status.snapshot()), parent)

    def close(self, comm_id: str) -> None:
        self.comms.discard(comm_id)

    def send(self, comm_id: str, data: dict[str, Any], parent: dict[str, Any] | None) -> None:
        self._publish("comm_msg", {"comm_id": comm_id, "data": data}, parent)

    def error(self, comm_id: str, message: str, parent: dict[str, Any] | None) -> None:
        """The answer to an action that could not be taken; nothing else changes."""
        data: StatusError = {"type": "error", "message": message}
        self.send(comm_id, dict(data), parent)

    def comm_info(self, target: str | None) -> dict[str, Any]:
        """Our open comms for a ``comm_info_request`` (all of them, or none for another target)."""
        if target and target != COMM_TARGET:
            return {}
        return {cid: {"target_name": COMM_TARGET} for cid in self.comms}

    # -- snapshots and events -----------------------------------------------------------------------------
    def publish(self) -> None:
        """Send the snapshot to every status comm and write the status file, now."""
        self.last_publish = self.status.clock.time()
        try:
            snap = dict(self.status.snapshot())
        except Exception:  # called from every handler: a status bug must not cost a cell its reply
            log.exception("could not build the status snapshot")
            return
        for comm_id in list(self.comms):
            self.send(comm_id, snap, None)
        if self._file_done:
            return
        try:
            write_status_file(self.path, snap)
        except OSError as exc:
            log.warning("could not write the status file: %s", exc)

    def publish_soon(self) -> None:
        """Publish a little later, coalescing bursts of changes into one snapshot."""
        if self._soon is None:

            def publish() -> None:
                self._soon = None
                self.publish()

            self._soon = asyncio.get_running_loop().call_later(COALESCE_S, publish)

    def event(self, kind: EventKind, message: str) -> None:
        """Something a user must not miss (the extension shows it as a notification)."""
        data: StatusEvent = {
            "type": "event",
            "kind": kind,
            "message": message,
            "at": datetime.fromtimestamp(self.status.clock.time(), timezone.utc).isoformat(),
        }
        for comm_id in list(self.comms):
            self.send(comm_id, dict(data), None)

    # -- the state machine --------------------------------------------------------------------------------
    def move(
        self,
        state: KernelState,
        message: str | None = None,
        *,
        phase: Phase | None | object = _KEEP,
        queue: QueueInfo | None | object = _KEEP,
        publish: bool = True,
    ) -> None:
        """The one way the gateway changes state: check the move against ``TRANSITIONS``, set the state (and
        the message, phase and queue given), and publish the snapshot."""
        s = self.status
        if state != KernelState.CPU_ONLY and state not in TRANSITIONS[KernelState(s.state)]:
            log.error("unexpected status move %s -> %s", s.state, state)
        s.state = state
        if message is not None:
            s.message = message
        if phase is not _KEEP:
            s.phase = phase  # type: ignore[assignment]
        if queue is not _KEEP:
            s.queue = queue  # type: ignore[assignment]
        if publish:
            self.publish()

    # -- the file -----------------------------------------------------------------------------------------
    def drop_file(self) -> None:
        """Remove the status file for good, on every way out (shutdown_request, a signal, the parent watch).

        No server clean-up may follow (a console that exited, a server that crashed), and a file left behind
        would show a ghost kernel in the server's fleet view.
        """
        self._file_done = True  # a late timer (first load, coalesced publish) must not rewrite it
        if self.path is not None:
            self.path.unlink(missing_ok=True)
