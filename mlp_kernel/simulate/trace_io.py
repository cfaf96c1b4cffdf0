"""Trace files: JSON lines and CSV with one row schema, so users can replay their own history.

One row per event, the shape a log exporter naturally produces (see docs/simulator.md for the full format):

    {"event": "open",  "session": "s1", "user": "alice", "t": "2026-01-05T09:00:00Z", "burstable": true}
    {"event": "cell",  "session": "s1", "t": "2026-01-05T09:02:10Z", "duration": "6m", "gpus": 1}
    {"event": "close", "session": "s1", "t": "2026-01-05T18:40:00Z"}

``t`` is either a number of seconds from the trace start or an ISO 8601 timestamp (all rows of a file use
one kind). ``duration`` is seconds or a duration such as ``90s``/``6m``/``1h30m``. CSV files carry the same
columns with a header row; empty cells mean "not given". Errors name the file, line and field.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..placement.units import parse_duration
from ..safe_yaml import YamlInputError, read_yaml_text
from .trace import DEFAULT_EPOCH, Cell, Session, Trace

COLUMNS = (
    "event",
    "session",
    "user",
    "t",
    "duration",
    "gpus",
    "burstable",
    "budget",
    "tier",
    "gpu_model",
    "data_class",
    "lead",
)
_OPEN_FIELDS = ("burstable", "budget", "tier", "gpu_model", "data_class")


_UNIX = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAX_SPAN_S = 10 * 366 * 86400.0  # times and durations: within ten years (NaN, infinity, 1e308 are refused)
MAX_GPUS = 1024
_LAST = datetime(2200, 1, 1, tzinfo=timezone.utc)


class TraceError(ValueError):
    """A trace file that cannot be read; the message names file, line and field."""


@dataclass
class _Building:
    user: str = ""
    open_t: float | None = None
    close_t: float | None = None
    cells: list[Cell] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    line: int = 0


def read_trace(path: str | Path) -> Trace:
    """Read a ``.jsonl``/``.json`` or ``.csv`` trace (chosen by suffix)."""
    p = Path(path)
    try:  # size-bounded; gzip'd, binary and non-UTF-8 files are refused with one line
        text = read_yaml_text(p)
    except YamlInputError as exc:
        raise TraceError(f"{p}: cannot read trace file: {exc.problem}") from None
    if p.suffix.lower() == ".csv":
        return parse_rows(_csv_rows(text, str(p)), source=str(p))
    return parse_rows(_jsonl_rows(text, str(p)), source=str(p))


def write_trace(trace: Trace, path: str | Path) -> None:
    """Write ``trace`` as JSON lines or CSV (by suffix), times in seconds from the trace start."""
    p = Path(path)
    rows = list(trace_rows(trace))
    if p.suffix.lower() == ".csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(row.get(k)) for k in COLUMNS})
        p.write_text(buf.getvalue(), encoding="utf-8")
    else:
        p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def trace_rows(trace: Trace) -> Iterator[dict[str, Any]]:
    """The rows of ``trace``: per session its open, its cells, its close; numbers rounded to milliseconds."""
    yield {"event": "meta", "epoch": trace.epoch.isoformat()}
    for s in trace.sessions:
        row: dict[str, Any] = {"event": "open", "session": s.session_id, "user": s.user, "t": _r(s.open_s)}
        for name in _OPEN_FIELDS:
            if getattr(s, name) is not None:
                row[name] = getattr(s, name)
        yield row
        for c in s.cells:
            cell_row: dict[str, Any] = {
                "event": "cell",
                "session": s.session_id,
                "t": _r(c.start_s),
                "duration": _r(c.duration_s),
                "gpus": c.gpus,
            }
            if c.lead_s is not None:
                cell_row["lead"] = _r(c.lead_s)
            yield cell_row
        yield {"event": "close", "session": s.session_id, "t": _r(s.close_s)}


def parse_rows(rows: Iterable[tuple[int, dict[str, Any]]], source: str = "<trace>") -> Trace:
    """Build a ``Trace`` from ``(line number, row)`` pairs; sessions without a close end at the last event."""
    building: dict[str, _Building] = {}
    epoch: datetime | None = None
    clock: _Clock | None = None
    last_t = 0.0
    for line, row in rows:
        where = f"{source}:{line}"
        event = str(row.get("event") or "").strip().lower()
        if event == "meta":
            if row.get("epoch"):
                epoch = _parse_datetime(str(row["epoch"]), f"{where}: field 'epoch'")
            continue
        if event not in ("open", "cell", "close"):
            raise TraceError(f"{where}: field 'event' must be open, cell or close (or meta), got {event!r}")
        sid = str(row.get("session") or "").strip()
        if not sid:
            raise TraceError(f"{where}: field 'session' is missing; every row names its session id")
        if clock is None:
            clock = _Clock(epoch)
        t = clock.seconds(row.get("t"), f"{where}: field 't'")
        last_t = max(last_t, t)
        b = building.setdefault(sid, _Building(line=line))
        if event == "open":
            if b.open_t is not None:
                raise TraceError(f"{where}: session {sid!r} is opened twice")
            b.open_t, b.user, b.line = t, str(row.get("user") or sid), line
            b.extra = _open_fields(row, where)
        elif event == "cell":
            duration = _duration(row.get("duration"), f"{where}: field 'duration'")
            gpus = _int(row.get("gpus"), f"{where}: field 'gpus'")
            raw_lead = row.get("lead")
            lead = None if raw_lead in (None, "") else _duration(raw_lead, f"{where}: field 'lead'")
            b.cells.append(Cell(start_s=t, duration_s=duration, gpus=gpus, lead_s=lead))
            last_t = max(last_t, t + duration)
        else:
            b.close_t = t
    if not building:
        raise TraceError(f"{source}: the trace has no sessions; expected open/cell/close rows")
    for sid, b in building.items():
        if b.open_t is None:
            raise TraceError(f"{source}: session {sid!r} has cells or a close but no 'open' row")
    first = min(min([b.open_t or 0.0, *(c.start_s for c in b.cells)]) for b in building.values())
    if last_t - first > MAX_SPAN_S:
        days = (last_t - first) / 86400
        raise TraceError(f"{source}: the trace spans more than ten years ({days:.0f} days)")
    shift = 0.0
    if clock is not None and clock.iso and epoch is None:
        # ISO times were read as seconds since 1970; count them from midnight UTC of the earliest day instead
        clock.origin = (_UNIX + timedelta(seconds=first)).replace(hour=0, minute=0, second=0, microsecond=0)
        shift = (clock.origin - _UNIX).total_seconds()
    sessions = []
    for sid, b in building.items():
        assert b.open_t is not None
        cells = tuple(
            sorted(
                (Cell(c.start_s - shift, c.duration_s, c.gpus, c.lead_s) for c in b.cells),
                key=lambda c: c.start_s,
            )
        )
        close = (b.close_t if b.close_t is not None else max([last_t] + [c.end_s for c in b.cells])) - shift
        b.open_t -= shift
        sessions.append(
            Session(session_id=sid, user=b.user, open_s=b.open_t, close_s=close, cells=cells, **b.extra)
        )
    base = clock.origin if clock and clock.origin is not None else (epoch or DEFAULT_EPOCH)
    try:
        return Trace.of(sessions, epoch=base, source=source)
    except ValueError as exc:
        raise TraceError(f"{source}: {exc}") from exc


class _Clock:
    """Turns ``t`` values into seconds: numbers as they are, ISO timestamps from ``epoch`` (the meta row's)
    or, without one, from 1970 until ``parse_rows`` rebases them on the earliest day."""

    def __init__(self, epoch: datetime | None) -> None:
        self.origin: datetime | None = epoch
        self.iso: bool | None = None

    def seconds(self, value: Any, where: str) -> float:
        if value is None or value == "":
            raise TraceError(f"{where} is missing; give seconds from the trace start or an ISO 8601 time")
        is_iso = isinstance(value, str) and ("T" in value or "-" in value.strip().lstrip("-")[:5])
        if self.iso is None:
            self.iso = is_iso
        elif self.iso != is_iso:
            raise TraceError(f"{where}: mixes ISO timestamps and numbers of seconds; use one kind per file")
        if not is_iso:
            try:
                if isinstance(value, bool):
                    raise TypeError
                seconds = float(value)
            except (TypeError, ValueError, OverflowError):
                raise TraceError(
                    f"{where}: expected seconds or an ISO 8601 time, got {_short(value)}"
                ) from None
            return _bounded(seconds, where, "seconds from the trace start", -MAX_SPAN_S)
        seconds = (_parse_datetime(str(value), where) - (self.origin or _UNIX)).total_seconds()
        if self.origin is not None:
            return _bounded(seconds, where, "seconds from the meta row's epoch", -MAX_SPAN_S)
        return seconds  # seconds since 1970, rebased on the earliest day by parse_rows


def _bounded(value: float, where: str, what: str, low: float = 0.0) -> float:
    """``value`` if finite and within ten years, else a ``TraceError`` (NaN/inf break the event engine)."""
    if not (math.isfinite(value) and low <= value <= MAX_SPAN_S):
        raise TraceError(
            f"{where}: {what} must be a finite number from {low:g} to {MAX_SPAN_S:g}, got {value}"
        )
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _parse_datetime(text: str, where: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise TraceError(
            f"{where}: not an ISO 8601 time: {_short(text)} (e.g. 2026-01-05T09:00:00Z)"
        ) from None
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    if not _UNIX <= when <= _LAST:  # the simulator adds years of seconds to these: 9999-12-31 overflows
        raise TraceError(f"{where}: {_short(text)} is outside 1970 to {_LAST.year}")
    return when


def _open_fields(row: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _OPEN_FIELDS:
        value = row.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, (str, bool, int)):  # a JSON list or object where a word belongs
            raise TraceError(f"{where}: field {name!r} must be a string, got a JSON {type(value).__name__}")
        if name == "burstable":
            if isinstance(value, str):
                if value.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise TraceError(f"{where}: field 'burstable' must be true or false, got {value!r}")
                value = value.strip().lower() in ("true", "1", "yes")
            out[name] = bool(value)
        elif name == "budget":
            if str(value) not in ("flex", "fixed"):
                raise TraceError(f"{where}: field 'budget' must be 'flex' or 'fixed', got {value!r}")
            out[name] = str(value)
        else:
            out[name] = str(value)
    return out


def _duration(value: Any, where: str) -> float:
    if value is None or value == "":
        raise TraceError(f"{where} is missing; cells need a duration (seconds or e.g. 6m)")
    try:
        if isinstance(value, (dict, list)):
            raise ValueError(f"expected seconds or e.g. 6m, got a JSON {type(value).__name__}")
        return _bounded(parse_duration(value), where, "a duration in seconds")
    except ValueError as exc:
        raise TraceError(f"{where}: {exc}") from None


def _int(value: Any, where: str) -> int:
    if value is None or value == "":
        return 0
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise TraceError(f"{where}: expected a whole number of GPUs, got {_short(value)}") from None
    if not (math.isfinite(number) and 0 <= number <= MAX_GPUS) or number != int(number):
        raise TraceError(
            f"{where}: expected a whole number of GPUs from 0 to {MAX_GPUS}, got {_short(value)}"
        )
    return int(number)


def _jsonl_rows(text: str, source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TraceError(f"{source}:{n}: not valid JSON ({exc.msg}); one JSON object per line") from None
        except (ValueError, RecursionError) as exc:  # 5,000 digits in a number; arrays nested 100,000 deep
            problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
            raise TraceError(f"{source}:{n}: not usable JSON ({problem})") from None
        if not isinstance(row, dict):
            raise TraceError(f"{source}:{n}: expected a JSON object, got {type(row).__name__}")
        yield n, row


def _csv_rows(text: str, source: str = "<trace>") -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    try:
        for row in reader:
            yield (
                reader.line_num,
                {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k},
            )
    except csv.Error as exc:  # a field over csv's size limit, a stray NUL
        raise TraceError(f"{source}:{reader.line_num}: not valid CSV ({exc})") from None


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _r(x: float) -> float | int:
    value = round(x, 3)
    return int(value) if value == int(value) else value
