"""A level-triggered controller loop: wake on relevant store events (or a resync tick), then reconcile.

Reconciling everything on each wake-up is cheap at test scale and avoids the bookkeeping bugs of
edge-triggered code; ``handle`` still receives the raw events for controllers that need deletions.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections import deque
from typing import TYPE_CHECKING

from ..store import Event

if TYPE_CHECKING:
    from ..server import KubeApiServer

log = logging.getLogger(__name__)


class Controller:
    name = "controller"
    #: (group, plural) of the kinds that wake this controller; empty means every kind
    watches: tuple[tuple[str, str], ...] = ()
    #: seconds between unconditional reconciles (None: only on events)
    resync: float | None = None

    def __init__(self, server: KubeApiServer):
        self.server = server
        self.store = server.store
        self._events: deque[Event] = deque()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def start(self) -> None:
        self.store.subscribe(self._on_event)
        self._thread = threading.Thread(target=self._run, name=f"{self.server.name}-{self.name}", daemon=True)
        self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def kick(self) -> None:
        """Ask for a reconcile now (tests call it after changing controller configuration)."""
        self._wake.set()

    def _on_event(self, event: Event) -> None:
        if not self.watches or event.rtype.key in self.watches:
            self._events.append(event)
            self._wake.set()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self.resync)
            self._wake.clear()
            if self._stopped.is_set():
                return
            events = []
            while self._events:
                events.append(self._events.popleft())
            try:
                self.handle(events)
                self.reconcile()
            except Exception:  # keep the loop alive; tests read .errors
                self.errors.append(traceback.format_exc())
                log.error("%s controller failed:\n%s", self.name, self.errors[-1])

    def handle(self, events: list[Event]) -> None:
        """React to individual events (optional)."""

    def reconcile(self) -> None:
        """Bring the world towards the desired state (level-triggered)."""
