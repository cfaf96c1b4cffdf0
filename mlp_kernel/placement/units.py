"""Durations, sizes, times and Kubernetes quantities as people type them, and as we print them back.

Policy files, ``%gpu`` options and the CLI all accept human units (``15m``, ``1h30m``, ``2Gi``, ``+2h``,
``500m``). One parser for each keeps the accepted spellings identical everywhere (a deadline the CLI took was
refused by ``%gpu``, and quantities were matched by three different patterns), and one formatter keeps the
messages users read consistent ("ETA ~6 min", "idle timeout 15 min").
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)", re.IGNORECASE)
# One way to match any text: a whitespace run belongs to the part before it (``\s*`` at both ends of a part
# made "1s 1s ... x" backtrack exponentially; 5,000 parts hung the gateway and the policy loader).
_DURATION_FULL = re.compile(r"\s*(?:\d+(?:\.\d+)?\s*(?:ms|s|m|h|d)\s*)+", re.IGNORECASE)
_DURATION_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

MAX_DURATION_S = 30 * 86400.0
"""The longest duration any ``%gpu`` option, policy field or CLI flag may give (30 days). Every one of them
ends up in a timer or a ``datetime``; a larger value (``1e12`` seconds) overflows those far from where it was
typed, so it is refused where it is typed."""

_DURATION_HELP = "expected e.g. 90s, 15m, 1h30m, 2h or a number of seconds"
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtpe]i?)?(b)?", re.IGNORECASE)  # on stripped text: see above
_SIZE_FACTOR = {
    "": 1,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
    "t": 10**12,
    "p": 10**15,
    "e": 10**18,
    "ki": 2**10,
    "mi": 2**20,
    "gi": 2**30,
    "ti": 2**40,
    "pi": 2**50,
    "ei": 2**60,
}


def parse_duration(text: str | int | float, maximum: float = math.inf) -> float:
    """Seconds in a duration such as ``"90s"``, ``"15m"``, ``"1h30m"``, ``"2h"``, ``"0"`` or ``"45"``.

    A bare number means seconds. Units: ms, s, m, h, d, combinable largest first or in any order
    (``"1h30m"``). Raises ``ValueError`` naming the accepted forms otherwise, or when over ``maximum``.
    """
    if isinstance(text, bool):
        raise ValueError(f"invalid duration {text!r}: {_DURATION_HELP}")
    if isinstance(text, (int, float)):
        value = float(text) if abs(text) < 1e300 else math.inf  # float(10**400) overflows
    else:
        s = str(text).strip()
        try:
            value = float(s)
        except ValueError:
            if not s or not _DURATION_FULL.fullmatch(s):
                raise ValueError(f"invalid duration {_short(text)}: {_DURATION_HELP}") from None
            value = sum(float(n) * _DURATION_UNIT_S[u.lower()] for n, u in _DURATION_PART.findall(s))
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise ValueError(f"invalid duration {_short(text)}: must be a finite number of seconds >= 0")
    if value > maximum:
        raise ValueError(f"invalid duration {_short(text)}: must be at most {format_duration(maximum)}")
    return value


def format_duration(seconds: float) -> str:
    """Short human form: ``"45 s"``, ``"15 min"``, ``"1 h 30 min"``, ``"2 d 3 h"``.

    Seconds are shown only under a minute; minutes are rounded to the nearest whole minute above that.
    """
    if seconds is None or math.isnan(seconds):
        return "unknown"
    if math.isinf(seconds):
        return "forever"
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{round(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} d" + (f" {hours} h" if hours else "")


def parse_size(text: str | int) -> int:
    """Bytes in a size such as ``"2Gi"``, ``"500M"``, ``"100MB"``, ``"1.5Gi"`` or ``"1024"``.

    Binary suffixes (Ki, Mi, Gi, Ti, Pi, Ei) are powers of 1024, decimal ones (k, M, G, T, P, E) powers of
    1000, as in Kubernetes quantities; a trailing ``B`` is allowed. Raises ``ValueError`` otherwise.
    """
    if isinstance(text, bool):
        raise ValueError(f"invalid size {text!r}: expected e.g. 2Gi, 500M, 100MB or a number of bytes")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"invalid size {text!r}: must be >= 0")
        return text
    m = _SIZE.fullmatch(str(text).strip())
    if not m:
        raise ValueError(f"invalid size {_short(text)}: expected e.g. 2Gi, 500M, 100MB or a number of bytes")
    number, suffix, _ = m.groups()
    value = float(number) * _SIZE_FACTOR[(suffix or "").lower()]
    if not math.isfinite(value):  # hundreds of digits: float() says inf, and int(inf) raises OverflowError
        raise ValueError(f"invalid size {_short(text)}: far too large")
    return int(value)


def _short(text: object) -> str:
    """``repr`` of a value for an error message, cut so a thousand-digit input stays one readable line."""
    r = repr(text)
    return r if len(r) <= 40 else r[:37] + "..."


def format_size(n: int | float) -> str:
    """Short binary form: ``"512 B"``, ``"1.5 KiB"``, ``"2 GiB"``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            if unit == "B":
                return f"{int(value)} B"
            text = f"{value:.1f}".rstrip("0").rstrip(".")
            return f"{text} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# --- Kubernetes quantities ----------------------------------------------------------------------------------

# The API server's grammar (a decimal or binary SI suffix, or an exponent), with bounded digit runs: 400
# digits reach no pod, and an unbounded pattern is a hang waiting for a long enough input.
_QUANTITY = re.compile(
    r"\+?(?P<number>\d{1,18}(\.\d{0,9})?|\.\d{1,9})(?P<suffix>[eE][+-]?\d{1,2}|[numkMGTPE]|[KMGTPE]i)?"
)
_QUANTITY_FACTOR = {
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}  # fmt: skip
MAX_QUANTITY = 2.0**62
QUANTITY_HELP = "a Kubernetes quantity such as 4, 500m or 16Gi"


def parse_quantity(value: str | int | float) -> float:
    """The value of a Kubernetes quantity (``"500m"`` -> 0.5, ``"16Gi"``, ``"1e3"``, ``8``).

    The one parser for the policy's ``cpu``/``memory``, the CLI's flags and the quotas read from Kueue. Raises
    ``ValueError`` for anything else (``"lots"``, ``true``, NaN, a negative or absurdly large number): read as
    0 it would silently change where kernels go.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value) if abs(value) < MAX_QUANTITY else math.inf  # float(10**400) overflows
    else:
        m = _QUANTITY.fullmatch(value.strip()) if isinstance(value, str) else None
        if m is None:
            raise ValueError(f"{_short(value)} is not {QUANTITY_HELP}")
        suffix = m.group("suffix") or ""
        if suffix[:1] in ("e", "E") and len(suffix) > 1:
            number = float(m.group("number") + suffix)
        else:
            number = float(m.group("number")) * _QUANTITY_FACTOR[suffix]
    if not (math.isfinite(number) and 0 <= number < MAX_QUANTITY):
        raise ValueError(f"{_short(value)} is not a usable quantity (must be finite, >= 0 and < 2**62)")
    return number


# --- times and deadlines ------------------------------------------------------------------------------------

DEADLINE_RANGE = f"after now, at most {format_duration(MAX_DURATION_S)} ahead"
_TIME_FORMS = "an ISO 8601 time (2026-12-01T18:00, 2026-12-01T18:00:00+01:00)"


def parse_time(text: str, zone: timezone | None = None) -> datetime:
    """An absolute time typed by a person: ISO 8601, ``Z`` or an offset allowed; without one it is in ``zone``
    (UTC by default). Years 1970 to 2199 only: callers add durations to it, and 9999-12-31 would overflow.
    Raises ``ValueError`` saying what was expected."""
    t = _iso(text, zone)
    if not 1970 <= t.year < 2200:
        raise ValueError(f"{_short(text)} is outside the years 1970 to 2199")
    return t


def _iso(text: str, zone: Any, forms: str = "") -> datetime:
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{_short(text)} is not {_TIME_FORMS}{forms}") from None
    return t if t.tzinfo else t.replace(tzinfo=zone or timezone.utc)


def parse_deadline(text: str, now: datetime) -> datetime | None:
    """A request's deadline: ``+DURATION`` after ``now`` (``+2h``), an ISO 8601 time, or ``none``/``off``
    (None). The one rule for ``%gpu deadline=`` and ``mlp-kernel place --deadline``: after ``now`` and at most
    30 days ahead (a deadline further out changes nothing, and ``+1e308`` overflows a ``datetime``). Raises
    ``ValueError`` saying why."""
    text = text.strip()
    if text.lower() in ("none", "off", ""):
        return None
    if text.startswith("+"):
        seconds = parse_duration(text[1:])
        if not 0 < seconds <= MAX_DURATION_S:
            raise ValueError(f"must be {DEADLINE_RANGE}")
        return now + timedelta(seconds=seconds)
    dt = _iso(text, now.tzinfo, ", +DURATION (+2h) or none")
    if not now < dt <= now + timedelta(seconds=MAX_DURATION_S):
        when = "is in the past" if dt <= now else "is too far ahead"
        raise ValueError(f"{when}; a deadline must be {DEADLINE_RANGE}")
    return dt
