"""What a replayable notebook history is: sessions that open, run cells and close.

The simulator, the trace files and the generator all speak these immutable values, so a trace exported from
jupyter_server logs and one drawn by the generator are replayed by exactly the same code. Times are seconds
from the trace's ``epoch`` (a timezone-aware datetime), which keeps the event engine on plain floats while
placement still receives real wall-clock datetimes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..placement.types import Budget

DEFAULT_EPOCH = datetime(2026, 1, 5, tzinfo=timezone.utc)  # a Monday, so generated weeks start on one


@dataclass(frozen=True)
class Cell:
    """One cell execution as the user submitted it.

    ``start_s`` is when the user submitted the cell, ``duration_s`` how long it ran once its kernel was up,
    ``gpus`` how many GPUs the code actually uses (0 for pure CPU cells: data loading, plotting, edits).
    """

    start_s: float
    duration_s: float
    gpus: int = 0
    lead_s: float | None = None  # the user started working on it this long before submitting (pre-start)

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class Session:
    """One notebook session: opened, cells run in order, closed.

    The request fields are what the user's ``%gpu`` line or kernelspec defaults would say; ``None`` means the
    policy's default request applies. ``burstable``/``budget`` matter only to strategies that may burst.
    """

    session_id: str
    user: str
    open_s: float
    close_s: float
    cells: tuple[Cell, ...] = ()
    burstable: bool | None = None
    budget: Budget | None = None
    tier: str | None = None
    gpu_model: str | None = None
    data_class: str | None = None

    @property
    def max_gpus(self) -> int:
        """GPUs a whole-session allocation must have: the most any of its cells uses."""
        return max((c.gpus for c in self.cells), default=0)

    @property
    def busy_s(self) -> float:
        """Seconds in which the session ran GPU code (wall time, not GPU-weighted)."""
        return sum(c.duration_s for c in self.cells if c.gpus > 0)


@dataclass(frozen=True)
class Trace:
    """A set of sessions on a common clock; sessions are kept sorted by open time."""

    sessions: tuple[Session, ...]
    epoch: datetime = DEFAULT_EPOCH
    meta: dict[str, object] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, sessions: Iterable[Session], epoch: datetime = DEFAULT_EPOCH, **meta: object) -> Trace:
        ordered = tuple(sorted(sessions, key=lambda s: (s.open_s, s.session_id)))
        validate_sessions(ordered)
        return cls(sessions=ordered, epoch=epoch, meta=dict(meta))

    @property
    def cells(self) -> list[Cell]:
        return [c for s in self.sessions for c in s.cells]

    @property
    def span_s(self) -> float:
        """From the first open to the last close."""
        if not self.sessions:
            return 0.0
        return max(s.close_s for s in self.sessions) - min(s.open_s for s in self.sessions)

    @property
    def users(self) -> set[str]:
        return {s.user for s in self.sessions}


def validate_sessions(sessions: Sequence[Session]) -> None:
    """Raise ``ValueError`` naming the session and field when a session cannot be replayed as given."""
    seen: set[str] = set()
    for s in sessions:
        where = f"session {s.session_id!r}"
        if s.session_id in seen:
            raise ValueError(f"{where}: duplicate session id; every session needs its own id")
        seen.add(s.session_id)
        if s.close_s < s.open_s:
            raise ValueError(f"{where}: close ({s.close_s:g} s) is before open ({s.open_s:g} s)")
        if s.budget not in (None, "flex", "fixed"):
            raise ValueError(f"{where}: budget must be 'flex' or 'fixed', got {s.budget!r}")
        previous = s.open_s
        for i, c in enumerate(s.cells):
            cw = f"{where}, cell {i}"
            if c.start_s < previous:
                raise ValueError(
                    f"{cw}: starts at {c.start_s:g} s, before the session opened or the previous cell "
                    f"started ({previous:g} s); list cells in submit order"
                )
            if c.duration_s < 0:
                raise ValueError(f"{cw}: duration must be >= 0, got {c.duration_s:g}")
            if c.gpus < 0:
                raise ValueError(f"{cw}: gpus must be >= 0, got {c.gpus}")
            if c.lead_s is not None and c.lead_s < 0:
                raise ValueError(f"{cw}: lead must be >= 0, got {c.lead_s:g}")
            if c.start_s > s.close_s:
                raise ValueError(
                    f"{cw}: starts at {c.start_s:g} s, after the session closed ({s.close_s:g} s)"
                )
            previous = c.start_s
